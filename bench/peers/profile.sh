#!/usr/bin/env bash
# A CPU profile of fastserve under wrk, pinned as bench/peers/proxy.sh and
# run.sh measure: fastserve on CPU 0 (GOMAXPROCS=1), `wrk -t1` (and, as a
# proxy, the upstream bench/peers/upstream) on CPU 1; TLS 1.3, ECDSA P-256,
# long-lived keep-alive connections. The profile comes from the admin
# listener's /debug/pprof/profile (--admin-profiles), taken while wrk runs
# after a warm-up; Go's profiler counts user and kernel time of the process
# (setitimer ITIMER_PROF), so system calls show under their Go callers.
#
# Usage (as root, on Debian; installs wrk and curl when missing):
#   bash bench/peers/profile.sh [-m MODE] [-c CONNS] [-d SECONDS] [-b BODY] [-o DIR]
# Every option also reads from the environment: MODE=proxy (fastserve
# --proxy to the upstream) or static (fastserve --root serving a 13-byte
# file; BODY does not apply), CONNS=100, DURATION=20 (seconds profiled; wrk
# runs 2 s longer, after a 2 s warm-up), BODY=13B, 4KiB or 64KiB (the
# upstream's answer; the proxy streams a body over 16 KiB),
# OUT=bench/peers/profile (a directory: cpu-MODE-BODY-cCONNS.pprof, and .txt
# with the run's figures, the CPU by group (bench/peers/report cpu: system
# calls by kind, GC, clocks, timers, scheduler, crypto, the proxy's steps,
# fasthttp, the server), and pprof's top functions, flat and cumulative),
# BASE_PORT=19450 (fastserve on it, the upstream on +10, the admin listener
# on +20), KEEP_TMP=0. FASTSERVE_* variables reach fastserve.
# Read a profile further with `go tool pprof -http=127.0.0.1:PORT FILE`, or
# `go tool pprof -top -focus 'proxy\.\(\*Proxy\)\.prepare' FILE`. Traffic goes
# to 127.0.0.1 only.
set -euo pipefail

ORIG_PWD=$PWD
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SCRIPT=profile.sh
# shellcheck source=bench/peers/common.sh
. "$REPO/bench/peers/common.sh"

MODE=${MODE:-proxy}
CONNS=${CONNS:-100}
DURATION=${DURATION:-20}
BODY=${BODY:-13B}
OUT=${OUT:-$REPO/bench/peers/profile}
BASE_PORT=${BASE_PORT:-19450}
KEEP_TMP=${KEEP_TMP:-0}

parse_options m:MODE c:CONNS d:DURATION b:BODY o:OUT -- "$@"

SERVER_CPU=0
CLIENT_CPU=1
WARMUP=2
NOFILE=20000

check_options() {
	local v
	for v in CONNS DURATION BASE_PORT; do
		[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
	done
	((CONNS >= 1)) || die "CONNS must be >= 1, got $CONNS"
	((DURATION >= 1)) || die "DURATION must be >= 1 second, got $DURATION"
	((BASE_PORT >= 1024 && BASE_PORT + 20 <= 65535)) || die "BASE_PORT must be in 1024-65515, got $BASE_PORT"
	case $MODE in
	proxy | static) ;;
	*) die "MODE must be proxy or static, got '$MODE'" ;;
	esac
	case $BODY in
	13B) URL_PATH=/index.html ;;
	4KiB) URL_PATH=/4k.json ;;
	64KiB) URL_PATH=/64k.json ;;
	*) die "BODY must be 13B, 4KiB or 64KiB, got '$BODY'" ;;
	esac
	if [[ $MODE == static ]]; then
		BODY=13B
		URL_PATH=/index.html
	fi
	[[ $OUT = /* ]] || OUT=$ORIG_PWD/$OUT
}

wait_port() {
	local deadline=$((SECONDS + 15))
	until port_in_use "$1"; do
		kill -0 "${PID[$2]}" 2>/dev/null || die "$2 exited at start: $(tail -n 5 "$T/$2.log")"
		((SECONDS < deadline)) || die "$2 does not listen on 127.0.0.1:$1 after 15 s (see $T/$2.log)"
		sleep 0.2
	done
}

main() {
	check_options
	[[ $(id -u) == 0 ]] || die "run as root (sudo bash $0): it installs packages with apt-get"
	(($(nproc) >= 2)) || die "needs 2 CPUs, this machine has $(nproc)"
	local -a pkgs=()
	command -v wrk >/dev/null 2>&1 || pkgs+=(wrk)
	command -v curl >/dev/null 2>&1 || pkgs+=(curl)
	T=$(mktemp -d /tmp/fastserve-profile.XXXXXX)
	apt_install "${pkgs[@]}"
	if ! (ulimit -n "$NOFILE") 2>/dev/null; then
		NOFILE=$(ulimit -Hn)
	fi
	find_go
	mkdir -p "$OUT"
	local port=$BASE_PORT up=$((BASE_PORT + 10)) admin=$((BASE_PORT + 20)) p
	for p in "$port" "$up" "$admin"; do
		port_in_use "$p" && die "127.0.0.1:$p is in use: stop what holds it or set BASE_PORT"
	done
	log "building fastserve, upstream and report into $T/bin"
	(cd "$REPO" && "$GO" build -o "$T/bin/fastserve" ./cmd/fastserve && "$GO" build -o "$T/bin/upstream" ./bench/peers/upstream &&
		"$GO" build -o "$T/bin/report" ./bench/peers/report) || die "go build failed"
	"$T/bin/fastserve" cert --host 127.0.0.1,localhost --cert-file "$T/cert.pem" --key-file "$T/key.pem" 2>>"$T/cert.log"

	local -a serve=(serve --addr "127.0.0.1:$port" --cert "$T/cert.pem" --key "$T/key.pem" --admin "127.0.0.1:$admin" --admin-profiles)
	if [[ $MODE == proxy ]]; then
		launch_on "$CLIENT_CPU" upstream env GOMAXPROCS=1 "$T/bin/upstream" -addr "127.0.0.1:$up"
		wait_port "$up" upstream
		serve+=(--proxy "http://127.0.0.1:$up")
	else
		mkdir -p "$T/www"
		printf 'Hello, World!' >"$T/www/index.html"
		serve+=(--root "$T/www")
	fi
	launch fastserve env GOMAXPROCS=1 XDG_CACHE_HOME="$T/cache" "$T/bin/fastserve" "${serve[@]}"
	wait_port "$port" fastserve
	wait_port "$admin" fastserve

	local url="https://127.0.0.1:$port$URL_PATH" name="cpu-$MODE-$BODY-c$CONNS" t0 t1 u0 u1 hz
	hz=$(getconf CLK_TCK)
	log "warm-up ${WARMUP} s, then ${DURATION} s profiled under wrk -c$CONNS $url"
	wrk_run "$CONNS" "$WARMUP" "$url" >"$T/warmup.txt" 2>&1 || die "wrk warm-up failed: $(cat "$T/warmup.txt")"
	wrk_run "$CONNS" $((DURATION + 2)) "$url" >"$T/wrk.txt" 2>&1 &
	local wrk=$!
	STARTED[$wrk]=wrk
	sleep 1
	read -r t0 u0 < <(cpu_ticks "${PID[fastserve]}")
	curl -sS --max-time $((DURATION + 30)) -o "$OUT/$name.pprof" \
		"http://127.0.0.1:$admin/debug/pprof/profile?seconds=$DURATION" || die "could not fetch the profile"
	read -r t1 u1 < <(cpu_ticks "${PID[fastserve]}")
	wait "$wrk" || die "wrk failed: $(cat "$T/wrk.txt")"
	unset "STARTED[$wrk]"
	{
		echo "# fastserve $MODE profile: wrk -t1 -c$CONNS ${DURATION} s, $url, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
		echo "# fastserve CPU over the profile: $(((t1 - t0) * 1000 / hz)) ms (user $(((u1 - u0) * 1000 / hz)) ms) in ${DURATION} s"
		echo "# wrk: $(awk '/ requests in /' "$T/wrk.txt" | sed 's/^ *//'); $(awk '/^Requests\/sec:/' "$T/wrk.txt")"
		echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo
		"$GO" tool pprof -traces "$OUT/$name.pprof" 2>/dev/null >"$T/traces.txt"
		"$T/bin/report" cpu "$T/traces.txt"
		echo
		"$GO" tool pprof -top -nodecount=40 "$OUT/$name.pprof" 2>/dev/null
		echo
		"$GO" tool pprof -top -cum -nodecount=60 "$OUT/$name.pprof" 2>/dev/null
	} >"$OUT/$name.txt"
	log "wrote $OUT/$name.pprof and $OUT/$name.txt"
}

main
