"""Produce key<TAB>value lines from stdin to a Kafka topic with confluent-kafka.

Usage: produce_confluent.py BOOTSTRAP TOPIC [binary|structured] < lines

With a content mode, each value is read as a CloudEvent by the Python
CloudEvents SDK's JSON event format (cloudevents.core) and written by the
SDK's Kafka binding in that mode (to_binary or to_structured), keyed by the
SDK's default key mapping, the partitionkey extension, set to the line's key.

librdkafka's default partitioner (consistent_random, CRC32) differs from the
Java client's; eventfold's contract is Kafka's Java default, murmur2, which
librdkafka calls murmur2_random. Prints the number of records delivered and
exits non-zero if any delivery failed.
"""

import sys

from confluent_kafka import Producer


def sdk_writer(mode):
    """Return a function from (key, value) to (key, value, headers) that
    sends the value through the CloudEvents SDK in the given mode."""
    from cloudevents.core.bindings import kafka
    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent

    write = kafka.to_binary if mode == "binary" else kafka.to_structured
    fmt = JSONFormat()

    def convert(key, value):
        parsed = fmt.read(None, value)
        event = CloudEvent(attributes={**parsed.get_attributes(), "partitionkey": key.decode()},
                           data=parsed.get_data())
        message = write(event, fmt)
        return message.key, message.value, list(message.headers.items())

    return convert


def main() -> int:
    if len(sys.argv) not in (3, 4) or sys.argv[3:] not in ([], ["binary"], ["structured"]):
        print("usage: produce_confluent.py BOOTSTRAP TOPIC [binary|structured] < key<TAB>value lines", file=sys.stderr)
        return 2
    bootstrap, topic = sys.argv[1], sys.argv[2]
    convert = sdk_writer(sys.argv[3]) if len(sys.argv) == 4 else lambda k, v: (k, v, None)
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
                k, v, headers = convert(key, value)
                producer.produce(topic, key=k, value=v, headers=headers, on_delivery=on_delivery)
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
