#!/usr/bin/env bash
# A/B of two fastserve binaries (or one with two sets of flags): requests per
# server CPU-second under wrk, servers alternated run by run, each pinned to
# CPU 0 with GOMAXPROCS=1, wrk -t1 on CPU 1, as bench/peers/run.sh measures.
#
# Usage: ARGS_A="..." ARGS_B="..." bash bench/peers/ab.sh BIN_A BIN_B ROUNDS CONNS [PATH]
#   PATH defaults to /index.html of a 13-byte file served with --root.
# Prints one line per run and the median of the per-round ratios B/A.
# Traffic goes to 127.0.0.1 only; each run is 6 s of wrk. Needs Go: the
# figures come from bench/peers/report, built from this checkout.
set -euo pipefail
A=$1 B=$2 ROUNDS=$3 CONNS=$4 URL_PATH=${5:-/index.html}
SECONDS_PER_RUN=6
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'kill ${PA:-} ${PB:-} 2>/dev/null || true; rm -rf "$TMP"' EXIT
GO=$(command -v go || echo /usr/local/go/bin/go)
(cd "$REPO" && "$GO" build -o "$TMP/report" ./bench/peers/report)
ROOT=$TMP/www
mkdir "$ROOT"
printf 'Hello, World!' >"$ROOT/index.html"
GOMAXPROCS=1 taskset -c 0 "$A" serve --addr 127.0.0.1:18441 --admin "" --root "$ROOT" --log-level error ${ARGS_A:-} >/dev/null 2>&1 &
PA=$!
GOMAXPROCS=1 taskset -c 0 "$B" serve --addr 127.0.0.1:18442 --admin "" --root "$ROOT" --log-level error ${ARGS_B:-} >/dev/null 2>&1 &
PB=$!
sleep 1
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # clock ticks
hz=$(getconf CLK_TCK)
runs=$TMP/runs.jsonl
for r in $(seq "$ROUNDS"); do
	for s in A B; do
		if [[ $s == A ]]; then pid=$PA port=18441; else pid=$PB port=18442; fi
		c0=$(cpu "$pid")
		n=$(taskset -c 1 wrk -t1 -c"$CONNS" -d${SECONDS_PER_RUN}s "https://127.0.0.1:$port$URL_PATH" | awk '/requests in/{print $1}')
		c1=$(cpu "$pid")
		[[ -n $n ]] || { echo "ab.sh: no request count from wrk against $s" >&2; exit 1; }
		printf '{"round":%d,"conns":%d,"server":"%s","seconds":%d,"requests":%d,"cpu_ticks":%d,"clk_tck":%d}\n' \
			"$r" "$CONNS" "$s" "$SECONDS_PER_RUN" "$n" $((c1 - c0)) "$hz" >>"$runs"
		"$TMP/report" ab -last "$runs"
	done
done
"$TMP/report" ab "$runs"
