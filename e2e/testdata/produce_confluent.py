"""Produce key<TAB>value lines from stdin to a Kafka topic with confluent-kafka.

Usage: produce_confluent.py BOOTSTRAP TOPIC < lines

librdkafka's default partitioner (consistent_random, CRC32) differs from the
Java client's; eventfold's contract is Kafka's Java default, murmur2, which
librdkafka calls murmur2_random. Prints the number of records delivered and
exits non-zero if any delivery failed.
"""

import sys

from confluent_kafka import Producer


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: produce_confluent.py BOOTSTRAP TOPIC < key<TAB>value lines", file=sys.stderr)
        return 2
    bootstrap, topic = sys.argv[1], sys.argv[2]
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "linger.ms": 5,
    })
    delivered = 0
    failures = []

    def on_delivery(err, msg):
        nonlocal delivered
        if err is not None:
            failures.append(f"{msg.key()!r}: {err}")
        else:
            delivered += 1

    sent = 0
    for raw in sys.stdin.buffer:
        line = raw.rstrip(b"\r\n")
        if not line:
            continue
        key, sep, value = line.partition(b"\t")
        if not sep:
            print(f"line {sent + 1} has no tab between key and value", file=sys.stderr)
            return 2
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                # The local queue is full: serve delivery reports to drain it.
                producer.poll(0.1)
        producer.poll(0)
        sent += 1

    remaining = producer.flush(60)
    if remaining:
        failures.append(f"{remaining} records still queued after 60 s")
    print(delivered)
    for failure in failures[:10]:
        print(f"delivery failed: {failure}", file=sys.stderr)
    if failures or delivered != sent:
        print(f"delivered {delivered} of {sent} records", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
