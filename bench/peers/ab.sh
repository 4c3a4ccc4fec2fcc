#!/usr/bin/env bash
# A/B of two fastserve binaries (or one with two sets of flags): requests per
# server CPU-second under wrk, servers alternated run by run, each pinned to
# CPU 0 with GOMAXPROCS=1, wrk -t1 on CPU 1, as bench/peers/run.sh measures.
#
# Usage: ARGS_A="..." ARGS_B="..." bash bench/peers/ab.sh BIN_A BIN_B ROUNDS CONNS [PATH]
#   PATH defaults to /index.html of a 13-byte file served with --root.
# Prints one line per run and the median of the per-round ratios B/A.
# Traffic goes to 127.0.0.1 only; each run is 6 s of wrk.
set -euo pipefail
A=$1 B=$2 ROUNDS=$3 CONNS=$4 URL_PATH=${5:-/index.html}
ROOT=$(mktemp -d)
trap 'kill $PA $PB 2>/dev/null || true; rm -rf "$ROOT"' EXIT
printf 'Hello, World!' >"$ROOT/index.html"
GOMAXPROCS=1 taskset -c 0 "$A" serve --addr 127.0.0.1:18441 --admin "" --root "$ROOT" --log-level error ${ARGS_A:-} >/dev/null 2>&1 &
PA=$!
GOMAXPROCS=1 taskset -c 0 "$B" serve --addr 127.0.0.1:18442 --admin "" --root "$ROOT" --log-level error ${ARGS_B:-} >/dev/null 2>&1 &
PB=$!
sleep 1
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # clock ticks
hz=$(getconf CLK_TCK)
ratios=()
for r in $(seq "$ROUNDS"); do
	declare -A per=()
	for s in A B; do
		if [[ $s == A ]]; then pid=$PA port=18441; else pid=$PB port=18442; fi
		c0=$(cpu "$pid")
		n=$(taskset -c 1 wrk -t1 -c"$CONNS" -d6s "https://127.0.0.1:$port$URL_PATH" | awk '/requests in/{print $1}')
		c1=$(cpu "$pid")
		per[$s]=$(awk -v n="$n" -v t=$((c1 - c0)) -v hz="$hz" 'BEGIN{printf "%.0f", n / (t / hz)}')
		echo "round $r $s: $n requests, $(((c1 - c0) * 1000 / hz)) ms server CPU, ${per[$s]} req/CPU-s"
	done
	ratios+=("$(awk -v a="${per[A]}" -v b="${per[B]}" 'BEGIN{printf "%.3f", b / a}')")
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2;
	printf "B/A req per server CPU-s: median %.3f [%s-%s] over %d rounds\n", m, v[1], v[NR], NR}'
