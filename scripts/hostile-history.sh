#!/bin/bash
# hostile-history.sh BINARY READERS [SERVE FLAGS...]
#
# The history attack of RELIABILITY.md ("History reads that exhaust
# memory") on a built binary: start `BINARY serve` with its embedded
# broker on a fresh data dir, append one customer and 600 renames padded
# by an unknown data field to about 60 KiB, then run READERS concurrent
# GET /customers/pad-1/events?limit=1000 and print the server's RSS before
# and its high-water mark after (Linux /proc), with the answers' statuses.
set -euo pipefail
BIN=$1 N=$2
shift 2
PORT=$((18000 + RANDOM % 1000)) KPORT=$((19000 + RANDOM % 1000))
D=$(mktemp -d)
"$BIN" serve --data-dir "$D" --http-addr "127.0.0.1:$PORT" --embedded-addr "127.0.0.1:$KPORT" --log-level warn "$@" 2>"$D/log" &
PID=$!
trap 'kill $PID; wait $PID 2>/dev/null || true; rm -rf "$D"' EXIT
B=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$B/readyz" >/dev/null && break; sleep 0.2; done
curl -s -o /dev/null -X POST "$B/customers/pad-1/events" -d '{"type":"customer.registered","data":{"name":"P","email":"p@example.com"}}'
PAD=$(head -c 61000 /dev/zero | tr '\0' x)
for i in $(seq 600); do
  printf '{"type":"customer.renamed","data":{"name":"P%d","pad":"%s"}}' "$i" "$PAD" >"$D/body"
  curl -s -o /dev/null -X POST "$B/customers/pad-1/events?wait=0s" --data-binary @"$D/body"
done
for _ in $(seq 100); do
  curl -s "$B/customers/pad-1" | grep -q '"version":601,' && break
  sleep 0.3
done
sleep 2
echo "before: $(grep VmRSS /proc/$PID/status)"
PIDS=()
for _ in $(seq "$N"); do
  curl -s -o /dev/null -w '%{http_code}\n' "$B/customers/pad-1/events?limit=1000" >>"$D/codes" &
  PIDS+=($!)
done
wait "${PIDS[@]}"
echo "after $N readers: $(grep VmHWM /proc/$PID/status)"
sort "$D/codes" | uniq -c
