#!/usr/bin/env bash
# A/B of two fastserve builds as a TLS-terminating proxy (or static server),
# for a change worth a few percent on a shared, noisy machine. Both builds run
# at once, pinned to CPU 0 (GOMAXPROCS=1), each under its own `wrk -t1` on
# CPU 1, with the upstream (bench/peers/upstream) on CPU 1 too. The two wrk
# loads take turns in short slices (SIGSTOP/SIGCONT), so that the machine's
# drift over a run (other tenants, frequency) hits A and B alike, which
# rounds of seconds each do not: back to back, the same build measured
# 22,000-50,000 requests per CPU-second here. Each slice counts A's (or B's)
# requests from its /metrics and its CPU time from /proc; the script prints
# requests per proxy CPU-second for A and B and B/A per block of 10 slices,
# and over the whole run.
#
# Usage:
#   bash bench/peers/slices.sh A_BINARY B_BINARY [fastserve serve flags...]
# Environment: SLICES=40 SLICE=1 (seconds) CONNS=100 URLPATH=/ (the upstream
# serves /index.html 13 bytes, /4k.json, /64k.json; / answers 13 bytes too)
# MODE=proxy (or static: --root with a 13-byte index.html) BASE_PORT=19700.
# A binary may be a script that execs fastserve with flags of its own
# (`exec ./fastserve "$@" --proxy-max-conns-per-client -1`). Needs wrk, curl
# and taskset; traffic goes to 127.0.0.1 only.
set -euo pipefail

[[ $# -ge 2 ]] || {
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
	exit 2
}
A=$(realpath "$1") B=$(realpath "$2")
shift 2
SLICES=${SLICES:-40} SLICE=${SLICE:-1} CONNS=${CONNS:-100} URLPATH=${URLPATH:-/}
MODE=${MODE:-proxy} BASE_PORT=${BASE_PORT:-19700}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/fastserve-slices.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -CONT "$p" 2>/dev/null || true
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

GO=${GO:-go}
(cd "$REPO" && $GO build -o "$T/upstream" ./bench/peers/upstream)
"$A" cert --host 127.0.0.1 --cert-file "$T/cert.pem" --key-file "$T/key.pem" >/dev/null 2>&1
UP=$((BASE_PORT + 10))
taskset -c 1 env GOMAXPROCS=1 "$T/upstream" -addr "127.0.0.1:$UP" >"$T/upstream.log" 2>&1 &
PIDS+=($!)
mkdir -p "$T/www" && printf 'Hello, World!' >"$T/www/index.html"
case $MODE in
proxy) target=(--proxy "http://127.0.0.1:$UP") ;;
static) target=(--root "$T/www") ;;
*) echo "MODE must be proxy or static, got $MODE" >&2 && exit 2 ;;
esac
SRV=()
for i in 0 1; do
	bin=$A && [[ $i == 1 ]] && bin=$B
	taskset -c 0 env GOMAXPROCS=1 XDG_CACHE_HOME="$T/cache" "$bin" serve --addr "127.0.0.1:$((BASE_PORT + i))" \
		--cert "$T/cert.pem" --key "$T/key.pem" "${target[@]}" --admin "127.0.0.1:$((BASE_PORT + 20 + i))" "$@" \
		>"$T/server$i.log" 2>&1 &
	PIDS+=($!)
	SRV+=($!)
done
sleep 2
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
requests() { curl -s "http://127.0.0.1:$((BASE_PORT + 20 + $1))/metrics" | awk '/^fastserve_requests_total/ {s += $2} END {print s + 0}'; }

total=$((SLICES * SLICE * 2 + 30))
WRK=()
for i in 0 1; do
	taskset -c 1 wrk -t1 -c"$CONNS" -d"${total}s" "https://127.0.0.1:$((BASE_PORT + i))$URLPATH" >"$T/wrk$i.txt" 2>&1 &
	PIDS+=($!)
	WRK+=($!)
	kill -STOP "${WRK[$i]}"
done
for i in 0 1; do # warm-up: connections made, pools filled
	kill -CONT "${WRK[$i]}" && sleep 2 && kill -STOP "${WRK[$i]}"
done
: >"$T/slices"
for ((k = 0; k < SLICES; k++)); do
	row=""
	for i in 0 1; do
		r0=$(requests $i) c0=$(cpu "${SRV[$i]}")
		kill -CONT "${WRK[$i]}" && sleep "$SLICE" && kill -STOP "${WRK[$i]}"
		sleep 0.05 # answers in flight
		row+="$(($(requests $i) - r0)) $(($(cpu "${SRV[$i]}") - c0)) "
	done
	echo "$row" >>"$T/slices"
done
python3 - "$T/slices" "$(getconf CLK_TCK)" <<'EOF'
import statistics, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1])]
hz = int(sys.argv[2])
def rate(r, c): return r / (c / hz)
blocks = []
for i in range(0, len(rows), 10):
    b = rows[i:i + 10]
    a, bb = rate(sum(x[0] for x in b), sum(x[1] for x in b)), rate(sum(x[2] for x in b), sum(x[3] for x in b))
    blocks.append(bb / a)
    print(f"slices {i + 1}-{i + len(b)}: A {a:,.0f}  B {bb:,.0f} req per CPU-s  B/A {blocks[-1]:.3f}")
a, bb = rate(sum(x[0] for x in rows), sum(x[1] for x in rows)), rate(sum(x[2] for x in rows), sum(x[3] for x in rows))
print(f"all: A {a:,.0f}  B {bb:,.0f}  B/A {bb / a:.3f}; per block median {statistics.median(blocks):.3f} [{min(blocks):.3f}-{max(blocks):.3f}]")
EOF
