#!/usr/bin/env bash
# Validates `fastserve bench` against wrk: the same fastserve server on CPU 0, each client alone on CPU 1,
# alternating rounds; prints req/s, p50, p99 and the client's and server's CPU seconds over 6 s of each run.
# Usage: sudo bash bench/peers/vs-wrk.sh [ROUNDS]   (Debian; installs wrk when missing)
set -euo pipefail
rounds=${1:-3}
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
tmp=$(mktemp -d)
trap 'kill "${srv:-}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/fastserve" ./cmd/fastserve
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
taskset -c 0 "$tmp/fastserve" serve --addr 127.0.0.1:18443 --admin "" 2>/dev/null &
srv=$!
sleep 1
for c in 100 1000; do
	for round in $(seq "$rounds"); do
		for tool in wrk fastserve-bench; do
			if [ "$tool" = wrk ]; then
				taskset -c 1 wrk -t1 -c"$c" -d8s --latency https://127.0.0.1:18443/ >"$tmp/out" 2>&1 &
			else
				taskset -c 1 "$tmp/fastserve" bench -k -c "$c" -d 8s https://127.0.0.1:18443/ >"$tmp/out" 2>&1 &
			fi
			p=$!
			sleep 0.5
			c0=$(cpu "$p"); s0=$(cpu "$srv")
			sleep 6
			c1=$(cpu "$p"); s1=$(cpu "$srv")
			wait "$p"
			if [ "$tool" = wrk ]; then
				rps=$(awk '/Requests\/sec/{print $2}' "$tmp/out")
				p50=$(awk '/ 50%/{print $2}' "$tmp/out"); p99=$(awk '/ 99%/{print $2}' "$tmp/out")
			else
				rps=$(awk '/requests /{gsub(/[(\/s),]/, " ", $3); print $3}' "$tmp/out")
				p50=$(awk '/latency/{print $3}' "$tmp/out"); p99=$(awk '/latency/{print $7}' "$tmp/out")
			fi
			printf 'conns=%s round=%s %-15s rps=%s p50=%s p99=%s client-cpu-s=%.2f server-cpu-s=%.2f\n' \
				"$c" "$round" "$tool" "$rps" "$p50" "$p99" "$(echo "($c1-$c0)/$tck" | bc -l)" "$(echo "($s1-$s0)/$tck" | bc -l)"
		done
	done
done
