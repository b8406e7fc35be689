#!/bin/bash
# partitioned-longrun.sh BINARY CUSTOMERS EVENTS
#
# The long run of issue 16: CUSTOMERS customers over three
# `serve --serve-mode partitioned` instances on one host (README, "Serve
# modes"; the figures are in BENCHMARKS.md, "Partitioned long run").
#  1. `BINARY bench --scenarios fold --keep-topics` folds EVENTS events
#     about CUSTOMERS customers into a table on PARTITIONS partitions
#     (skipped when GROUP names the group of topics kept by an earlier run,
#     bench-<id>, with PARTITIONS set to their partition count).
#  2. Three instances start on empty data dirs and recover their share of
#     the table; printed: the time until every partition is owned, then
#     each instance's peak RSS and data dir size.
#  3. SAMPLE customers (from the merged list) are looked up with curl
#     --parallel (CLIENTS connections): round robin through all three
#     instances (two in three forwarded), then each at its owner (named by
#     Eventfold-Served-By); printed: lookups/s and answers other than 200.
#  4. Instance 1 is stopped with SIGTERM and started again on its data dir
#     (RESTARTS times, default 1); printed: the time to its /readyz 200 and
#     until every partition is owned again. The instances are static
#     members of the group (--instance-id longrun-<i>, README "Static
#     membership"), so the restart costs no rebalance; STATIC=0 runs them
#     as dynamic members, as before. Static members stay in the group for
#     their session timeout (45 s) after the script stops them: wait that
#     long before a run with STATIC=0 on the same GROUP.
# Needs a Kafka at BROKERS (default 127.0.0.1:29092), curl >= 7.84, jq.
set -euo pipefail
BIN=$1 N=$2 E=$3
BROKERS=${BROKERS:-127.0.0.1:29092} PARTITIONS=${PARTITIONS:-12}
SAMPLE=${SAMPLE:-20000} CLIENTS=${CLIENTS:-16}
W=$(mktemp -d)
echo "work dir $W"
if [ -z "${GROUP:-}" ]; then
  "$BIN" bench --brokers "$BROKERS" --kafka-version 4.0.0 --scenarios fold --partitions "$PARTITIONS" \
    --customers "$N" --events "$E" --kstreams=false --goka=false --rounds 1 --keep-topics --erasure off \
    --timeout 6h >"$W/bench.log" 2>&1
  GROUP=$(grep -o 'group=bench-[0-9a-f]*' "$W/bench.log" | head -1 | cut -d= -f2)
fi
echo "topics $GROUP-events, $GROUP-table; group $GROUP; $PARTITIONS partitions"
BASE=$((10000 + RANDOM % 4000 * 2))
PIDS=() URLS=()
start() { # start I: instance I on its data dir and port
  local i=$1 port=$((BASE + 2 * $1))
  "$BIN" serve --brokers "$BROKERS" --kafka-version 4.0.0 --events-topic "$GROUP-events" --group "$GROUP" \
    --partitions "$PARTITIONS" --erasure=off --serve-mode partitioned --log-level warn \
    --data-dir "$W/data-$i" --http-addr "127.0.0.1:$port" --advertised-url "http://127.0.0.1:$port" \
    --instance-id "$([ "${STATIC:-1}" = 0 ] || echo "longrun-$i")" 2>>"$W/serve-$i.log" &
  PIDS[$i]=$! URLS[$i]=http://127.0.0.1:$port
}
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait || true; }
trap cleanup EXIT
owned() { # partitions owned, summed over the instances
  local sum=0 n
  for u in "${URLS[@]}"; do
    n=$(curl -s -m 2 "$u/metrics" | awk '/^eventfold_partitions_owned / {print $2}')
    sum=$((sum + ${n:-0}))
  done
  echo $sum
}
await_owned() { # the seconds since $1 until every partition is owned (and, with $2, instance $2 owns some)
  until [ "$(owned)" = "$PARTITIONS" ] && { [ -z "${2:-}" ] || [ "$(curl -s -m 2 "${URLS[$2]}/metrics" | awk '/^eventfold_partitions_owned / {print $2}')" -gt 0 ] 2>/dev/null; }; do sleep 0.1; done
  echo "$(date +%s.%N) - $1" | bc
}
T0=$(date +%s.%N)
for i in 1 2 3; do start $i; done
echo "first start: every partition owned after $(await_owned "$T0") s"
for i in 1 2 3; do
  echo "instance $i: peak RSS $(($(awk '/VmHWM/ {print $2}' /proc/${PIDS[$i]}/status) / 1024)) MiB, data dir $(du -sh "$W/data-$i" | cut -f1), $(curl -s "${URLS[$i]}/metrics" | awk '/^eventfold_partitions_owned / {print $2}') partitions"
done

# The sample: ids from the merged list, each with its owner.
AFTER=""
: >"$W/ids"
while [ "$(wc -l <"$W/ids")" -lt "$SAMPLE" ]; do
  PAGE=$(curl -s "${URLS[1]}/customers?limit=1000&after=$AFTER")
  if ! echo "$PAGE" | jq -e '.customers' >/dev/null; then # a 503 while the group settles
    sleep 1
    continue
  fi
  echo "$PAGE" | jq -r '.customers[].id' >>"$W/ids"
  AFTER=$(echo "$PAGE" | jq -r '.next // empty')
  [ -n "$AFTER" ] || break
done
head -n "$SAMPLE" "$W/ids" >"$W/sample"
awk -v u="${URLS[1]}" '{print "url = \"" u "/customers/" $1 "\"\noutput = \"/dev/null\""}' "$W/sample" >"$W/probe.cfg"
curl -s --parallel --parallel-max "$CLIENTS" -K "$W/probe.cfg" -w '%{url} %header{eventfold-served-by}\n' >"$W/owners" 2>/dev/null
rate() { # rate NAME CONFIG: lookups per second of the config's URLs
  local t0 t1 answers
  t0=$(date +%s.%N)
  answers=$(curl -s --parallel --parallel-max "$CLIENTS" -K "$2" -w "%{http_code}\n" 2>/dev/null | sort | uniq -c | tr '\n' ' ')
  t1=$(date +%s.%N)
  echo "$1: $(echo "$(grep -c '^url' "$2") / ($t1 - $t0)" | bc) lookups/s, answers: $answers"
}
awk -v a="${URLS[1]}" -v b="${URLS[2]}" -v c="${URLS[3]}" \
  'BEGIN {u[0]=a; u[1]=b; u[2]=c} {print "url = \"" u[NR % 3] "/customers/" $1 "\"\noutput = \"/dev/null\""}' "$W/sample" >"$W/any.cfg"
awk '{n = split($1, p, "/customers/"); print "url = \"" $2 "/customers/" p[n] "\"\noutput = \"/dev/null\""}' "$W/owners" >"$W/owner.cfg"
for round in 1 2; do
  rate "round $round, through any instance" "$W/any.cfg"
  rate "round $round, at the owner" "$W/owner.cfg"
done

# Clean restarts of instance 1 on its data dir.
for r in $(seq "${RESTARTS:-1}"); do
  kill -TERM "${PIDS[1]}"
  wait "${PIDS[1]}" || true
  T1=$(date +%s.%N)
  start 1
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "${URLS[1]}/readyz")" = 200 ]; do sleep 0.02; done
  echo "restart $r of instance 1: ready after $(echo "$(date +%s.%N) - $T1" | bc) s, every partition owned again, some by it, after $(await_owned "$T1" 1) s"
done
