#!/bin/bash
# restart-kept.sh BINARY DATA_DIR MODE [SERVE FLAGS...]
#
# Starts `BINARY serve --serve-mode MODE` (replica or partitioned) on
# DATA_DIR, waits for /readyz 200, stops it with SIGTERM, and prints the
# time from process start to ready and the peak RSS (Linux /proc). Run it
# once on an empty DATA_DIR (the first start recovers the whole table),
# then again to time a restart on the kept copy: BENCHMARKS.md, "Restart
# on a kept processor copy". The serve flags name the broker, topics and
# group, e.g. those a run of `eventfold bench --keep-topics` left:
#   --brokers 127.0.0.1:29092 --events-topic bench-<id>-events --group bench-<id> --partitions 6 --erasure=off
# PROFILE=<file> also writes a 5 s CPU profile from the start.
set -euo pipefail
BIN=$1 DIR=$2 MODE=$3
shift 3
PORT=$((10000 + RANDOM % 5000 * 2)) # even: PORT+1 is the pprof port
ARGS=(serve --data-dir "$DIR" --http-addr "127.0.0.1:$PORT" --log-level warn --serve-mode "$MODE" "$@")
if [ "$MODE" = partitioned ]; then ARGS+=(--advertised-url "http://127.0.0.1:$PORT"); fi
if [ -n "${PROFILE:-}" ]; then ARGS+=(--pprof-addr "127.0.0.1:$((PORT + 1))"); fi
START=$(date +%s.%N)
"$BIN" "${ARGS[@]}" 2>>"$DIR.serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
if [ -n "${PROFILE:-}" ]; then
  for _ in $(seq 250); do curl -sf -o /dev/null "http://127.0.0.1:$((PORT + 1))/debug/pprof/" && break; sleep 0.02; done
  curl -s -o "$PROFILE" "http://127.0.0.1:$((PORT + 1))/debug/pprof/profile?seconds=5" &
  CPID=$!
fi
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")" = 200 ]; do
  kill -0 $PID 2>/dev/null || { echo "serve exited; see $DIR.serve.log" >&2; exit 1; }
  sleep 0.02
done
END=$(date +%s.%N)
HWM=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
if [ -n "${CPID:-}" ]; then wait "$CPID"; fi
echo "$(basename "$BIN") $MODE: ready in $(echo "$END - $START" | bc) s, peak RSS $((HWM / 1024)) MiB"
