#!/usr/bin/env bash
# bench-erasure.sh: the cost of erasure (sealed personal data), measured
# with `eventfold bench` run with --erasure off and on, ROUNDS times each,
# the order alternating between rounds (off,on then on,off ...) so that a
# shared machine's slow minutes fall on both sides. Prints the median of
# each figure and the ratio on/off.
#
#   scripts/bench-erasure.sh ./eventfold [ROUNDS] [bench flags...]
#   scripts/bench-erasure.sh ./eventfold 3 --brokers 127.0.0.1:19092
#
# The JSON reports stay in $OUT (default: a temp dir), named
# <round>-<on|off>.json.
set -euo pipefail

bin=${1:?usage: bench-erasure.sh EVENTFOLD_BINARY [ROUNDS] [bench flags...]}
rounds=${2:-3}
shift $(($# >= 2 ? 2 : 1))
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"

for ((r = 1; r <= rounds; r++)); do
	order=(off on)
	((r % 2 == 0)) && order=(on off)
	for mode in "${order[@]}"; do
		echo "bench-erasure: round $r, erasure $mode" >&2
		"$bin" bench --erasure "$mode" --kstreams=false --goka=false --scenarios fold,lookup,write \
			--out "$out/$r-$mode.json" "$@" >"$out/$r-$mode.txt" 2>"$out/$r-$mode.log"
	done
done

python3 - "$out" "$rounds" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
figures = {
    "fold events/s": lambda r: r["fold"]["fold"]["per_second"],
    "fold CPU µs per event (bench process)": lambda r: 1e6 * r["fold"]["fold_cpu_seconds"] / r["fold"]["events"],
    "lookup requests/s": lambda r: r["lookup"]["service"]["per_second"],
    "lookup p99 ms": lambda r: r["lookup"]["service"]["p99_ms"],
    "write writes/s": lambda r: r["write"]["service"]["per_second"],
    "write p99 ms": lambda r: r["write"]["service"]["p99_ms"],
    "event bytes (average)": lambda r: r["fold"]["event_bytes"] / r["fold"]["events"],
}
runs = {m: [json.load(open(f"{out}/{i}-{m}.json")) for i in range(1, rounds + 1)] for m in ("off", "on")}
print(f"erasure cost: medians of {rounds} rounds each, order alternated; reports in {out}")
print(f"{'figure':40} {'off':>12} {'on':>12} {'on/off':>8}   samples off | on")
for name, get in figures.items():
    samples = {m: [get(r) for r in runs[m]] for m in runs}
    med = {m: statistics.median(v) for m, v in samples.items()}
    fmt = lambda v: f"{v:,.1f}"
    print(f"{name:40} {fmt(med['off']):>12} {fmt(med['on']):>12} {med['on'] / med['off']:>8.3f}   "
          + ", ".join(map(fmt, samples["off"])) + " | " + ", ".join(map(fmt, samples["on"])))
EOF
