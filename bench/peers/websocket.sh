#!/usr/bin/env bash
# Side-by-side benchmark of fastserve and nginx as TLS-terminating WebSocket
# proxies in front of the same echo server, measured the way
# bench/peers/run.sh compares servers:
#
#   - each proxy pinned to CPU 0 (fastserve: GOMAXPROCS 1 from its CPU set;
#     nginx: 1 worker), the load client (bench/wsload) and the echo server
#     (bench/wsecho, plain ws://) pinned to CPU 1;
#   - echo load: C WebSockets (each of CONNS), each sending a SIZE-byte
#     binary message and waiting for its echo before the next, WARMUP s
#     then DURATION s measured; proxies alternated run by run within each
#     round (round 1: fastserve nginx, round 2: fastserve nginx, ...);
#   - per run: the messages echoed within the window, their p50 and p99
#     latency, and the proxy's CPU time over exactly that window (utime+stime
#     of the whole process, nginx master + worker, from /proc/PID/stat, read
#     by wsload at the window's edges, so that the set-up of the connections,
#     TLS handshakes and upgrades, is not in it): messages per proxy
#     CPU-second;
#   - medians over the rounds, min-max spreads, and the ratios to nginx as the
#     median of the per-round ratios (bench/peers/report ws-throughput);
#   - then each proxy alone, fresh, holding IDLE_CONNS idle WebSockets (one
#     echo each): (VmRSS after - VmRSS before) / N, where one WebSocket is two
#     sockets in the proxy, the client's (TLS) and the upstream's; the echo
#     server's memory is not counted.
#
# Usage (as root, on Debian; installs nginx-light when missing):
#   bash bench/peers/websocket.sh [-r ROUNDS] [-d SECONDS] [-w SECONDS] [-c CONNS]
#                                 [-s SIZE] [-i IDLE_CONNS] [-p PROXIES] [-o FILE]
# Every option also reads from the environment: ROUNDS=5 DURATION=10 WARMUP=2
# CONNS=100,1000 SIZE=64 IDLE_CONNS=10000 PROXIES=fastserve,nginx
# OUT=bench/peers/results-websocket.md BASE_PORT=19500 (the proxies on
# BASE_PORT and +1, the echo server on +2, fastserve's admin listener on +3)
# KEEP_TMP=0 (1 keeps the temp dir) NGINX_TLS13_ORDER=go (nginx prefers
# AES-128-GCM, as Go does; openssl = OpenSSL's order).
# PROFILE=1 adds one more idle test of fastserve, after the others, with
# --admin-profiles and every allocation profiled (GODEBUG=memprofilerate=1):
# its heap profile is saved (FILE without .md, then -heap.pb.gz) and what
# its idle tunnels hold, per tunnel, goes into the report.
# IDLE_CONNS=0 skips the memory test; ROUNDS=0 the echo load. A proxy needs 2
# descriptors per WebSocket: IDLE_CONNS must stay below half the open-file
# limit, which the script raises to 65536 or to the hard limit. FASTSERVE_*
# variables (fastserve's own settings) reach fastserve and are named in the
# report. Traffic goes to 127.0.0.1 only.
set -euo pipefail

ORIG_PWD=$PWD
ORIG_CMD="bash $0${*:+ $*}"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SCRIPT=websocket.sh
TMP_HOLDS="logs, configs, wsload outputs"
# shellcheck source=bench/peers/common.sh
. "$REPO/bench/peers/common.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-100,1000}
SIZE=${SIZE:-64}
IDLE_CONNS=${IDLE_CONNS:-10000}
PROXIES=${PROXIES:-fastserve,nginx}
OUT=${OUT:-$REPO/bench/peers/results-websocket.md}
BASE_PORT=${BASE_PORT:-19500}
KEEP_TMP=${KEEP_TMP:-0}
NGINX_TLS13_ORDER=${NGINX_TLS13_ORDER:-go}
PROFILE=${PROFILE:-0}

parse_options r:ROUNDS d:DURATION w:WARMUP c:CONNS s:SIZE i:IDLE_CONNS p:PROXIES o:OUT -- "$@"

SERVER_CPU=0 # the proxies'
CLIENT_CPU=1
NOFILE=65536 # pick_file_limit lowers it to the hard limit if it must
NOFILE_NOTE=""
IDLE_TIMEOUT=180 # seconds to set up the idle WebSockets
SETTLE=3         # seconds between "ready" and reading the RSS
SETTLE_LATER=20  # seconds between "ready" and reading it again (a Go server returns freed memory late)
FD_SPARE=64      # descriptors a proxy needs besides its WebSockets' (listeners, logs, epoll, pools)

check_options() {
	local v
	for v in ROUNDS DURATION WARMUP SIZE IDLE_CONNS BASE_PORT; do
		[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
	done
	((DURATION >= 1)) || die "DURATION must be >= 1 second, got $DURATION"
	((SIZE >= 8 && SIZE <= 65536)) || die "SIZE must be 8 to 65536 bytes (a message carries an 8-byte sequence number), got $SIZE"
	((BASE_PORT >= 1024 && BASE_PORT + 3 <= 65535)) || die "BASE_PORT must leave 4 ports in 1024-65535, got $BASE_PORT"
	[[ $CONNS =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "CONNS must be a comma-separated list of counts, got '$CONNS'"
	IFS=, read -ra CONN_LIST <<<"$CONNS"
	IFS=, read -ra PROXY_LIST <<<"$PROXIES"
	((${#PROXY_LIST[@]} > 0)) || die "PROXIES names no proxy"
	for v in "${PROXY_LIST[@]}"; do
		case $v in
		fastserve | nginx) ;;
		*) die "unknown proxy '$v' in PROXIES: want fastserve or nginx" ;;
		esac
	done
	[[ $NGINX_TLS13_ORDER == go || $NGINX_TLS13_ORDER == openssl ]] ||
		die "NGINX_TLS13_ORDER must be go or openssl, got '$NGINX_TLS13_ORDER'"
	[[ $PROFILE == 0 || $PROFILE == 1 ]] || die "PROFILE must be 0 or 1, got '$PROFILE'"
	if [[ $PROFILE == 1 ]]; then
		command -v curl >/dev/null 2>&1 || die "PROFILE=1 needs curl"
	fi
	[[ $OUT = /* ]] || OUT=$ORIG_PWD/$OUT
	[[ -d $(dirname "$OUT") ]] || die "no directory for the output file $OUT"
}

# --- processes --------------------------------------------------------------

PROFILING= # set while fastserve runs with its profiles on

start_echo() {
	port_in_use "$ECHO_PORT" && die "127.0.0.1:$ECHO_PORT (for wsecho) is in use: stop what holds it or set BASE_PORT"
	launch_on "$CLIENT_CPU" wsecho "$BIN/wsecho" -addr "127.0.0.1:$ECHO_PORT"
	local deadline=$((SECONDS + 10))
	until grep -q '^listening' "$T/wsecho.log" 2>/dev/null; do
		kill -0 "${PID[wsecho]}" 2>/dev/null || die "wsecho exited at start: $(tail -n 5 "$T/wsecho.log")"
		((SECONDS < deadline)) || die "wsecho does not listen after 10 s (see $T/wsecho.log)"
		sleep 0.1
	done
}

start_proxy() {
	local name=$1 port=${PORT[$1]}
	port_in_use "$port" && die "127.0.0.1:$port (for $name) is in use: stop what holds it or set BASE_PORT"
	case $name in
	fastserve)
		local -a profiles=()
		[[ -n $PROFILING ]] && profiles=(--admin-profiles)
		port_in_use "$ADMIN_PORT" && die "127.0.0.1:$ADMIN_PORT (fastserve's admin) is in use: stop what holds it or set BASE_PORT"
		# wsload is one client address: past its share of the upstream
		# connections (--proxy-max-conns-per-client, 256 by default) its
		# tunnels would wait, then get 503. nginx has no such bound.
		launch "$name" env XDG_CACHE_HOME="$T/cache" ${PROFILING:+GODEBUG=memprofilerate=1} "$BIN/fastserve" serve \
			--addr "127.0.0.1:$port" --cert "$CERT" --key "$KEY" --proxy "http://127.0.0.1:$ECHO_PORT" \
			--proxy-max-conns-per-client -1 --admin "127.0.0.1:$ADMIN_PORT" "${profiles[@]}"
		;;
	nginx) launch "$name" "$NGINX" -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" ;;
	esac
	local deadline=$((SECONDS + 15))
	until probe "$name" >"$T/$name.probe" 2>&1; do
		if ! kill -0 "${PID[$name]}" 2>/dev/null; then
			tail -n 20 "$T/$name.log" "$T/$name.probe" >&2 || true
			die "$name exited at start (log above)"
		fi
		((SECONDS < deadline)) || die "$name does not proxy a WebSocket on 127.0.0.1:$port after 15 s: $(cat "$T/$name.probe")"
		sleep 0.2
	done
	if [[ $name == nginx ]]; then
		nginx_one_worker
	fi
}

# probe opens one WebSocket through the proxy, echoes one message, closes.
probe() {
	timeout -k 2 10 "$BIN/wsload" -url "wss://127.0.0.1:${PORT[$1]}/" -n 1 -size "$SIZE" -timeout 3s -setup-timeout 5s </dev/null
}

# --- set-up -----------------------------------------------------------------

install_nginx() {
	[[ " ${PROXY_LIST[*]} " == *" nginx "* ]] || return 0
	find_nginx && return 0
	apt_install nginx
	find_nginx || die "nginx is still missing after apt-get install"
}

build() {
	log "building fastserve, wsload, wsecho, report into $BIN"
	(
		cd "$REPO"
		"$GO" build -o "$BIN/fastserve" ./cmd/fastserve
		"$GO" build -o "$BIN/wsload" ./bench/wsload
		"$GO" build -o "$BIN/wsecho" ./bench/wsecho
		"$GO" build -o "$BIN/report" ./bench/peers/report
	) || die "go build failed"
}

# max_websockets prints the most WebSockets open at once in any test.
max_websockets() {
	local c n=$IDLE_CONNS
	for c in "${CONN_LIST[@]}"; do
		((c > n)) && n=$c
	done
	echo "$n"
}

# nginx_conf writes nginx's configuration: one worker, its files under $T,
# the WebSocket proxying of nginx's own documentation.
nginx_conf() {
	local port=${PORT[nginx]} somaxconn conns
	somaxconn=$(cat /proc/sys/net/core/somaxconn)
	# Each WebSocket is two of nginx's connections, the client's and the
	# upstream's; and with fewer than 1/16 of its connections free, nginx
	# closes connections that wait for a request (those just past their TLS
	# handshake included) to make room: hence twice as many. A number over
	# the open-file limit costs only a warning and the memory of the
	# connection structures, allocated at start (in "RSS before").
	conns=$((4 * $(max_websockets) + 1024))
	mkdir -p "$T/nginx/tmp"
	cat >"$T/nginx/nginx.conf" <<EOF
$(nginx_conf_head "$conns")
http {
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path $T/nginx/tmp/client_body;
$(nginx_temp_paths "$T/nginx/tmp")
    server {
        # backlog as fastserve has it (net.core.somaxconn); keep-alive as fastserve's defaults
        listen 127.0.0.1:$port ssl so_keepalive=60s:10s:5 backlog=$somaxconn;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
$(nginx_tls13_suites "$NGINX_TLS13_ORDER")
        location / {
            proxy_pass http://127.0.0.1:$ECHO_PORT;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 3600s;
            # fastserve sets keep-alive on its upstream connections too
            proxy_socket_keepalive on;
        }
    }
}
EOF
	# (It warns when worker_connections exceed the open-file limit.)
	"$NGINX" -t -q -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" >"$T/nginx/test.log" 2>&1 ||
		die "nginx -t rejects $T/nginx/nginx.conf: $(cat "$T/nginx/test.log")"
}

# pick_file_limit sets NOFILE to 65536, or to the hard limit where that
# cannot be raised (a container without CAP_SYS_RESOURCE), and checks that
# a proxy can hold two descriptors per WebSocket.
pick_file_limit() {
	NOFILE=65536
	if ! (ulimit -n "$NOFILE") 2>/dev/null; then
		NOFILE=$(ulimit -Hn)
		NOFILE_NOTE=" (65536 refused: the hard limit here is $NOFILE)"
		log "cannot raise the open-file limit to 65536; using the hard limit $NOFILE"
	fi
	local n need
	n=$(max_websockets)
	need=$((2 * n + FD_SPARE))
	((NOFILE >= need)) || die "$n WebSockets need $need descriptors in the proxy (2 each, the client's and the upstream's, and $FD_SPARE spare); the open-file limit is $NOFILE$NOFILE_NOTE: lower IDLE_CONNS or CONNS to $(((NOFILE - FD_SPARE) / 2)) or less"
}

# --- runs -------------------------------------------------------------------

# one_run ROUND CONNS PROXY appends the echo run to runs.jsonl and prints
# its line.
one_run() {
	local round=$1 c=$2 name=$3 out line pids
	out="$T/wsload-r$round-c$c-$name"
	pids=$(server_pids "$name" | paste -sd,)
	if ! (ulimit -n "$NOFILE" && exec timeout --foreground -k 5 $((WARMUP + DURATION + 120)) \
		taskset -c "$CLIENT_CPU" "$BIN/wsload" -url "wss://127.0.0.1:${PORT[$name]}/" -c "$c" -size "$SIZE" \
		-warmup "${WARMUP}s" -d "${DURATION}s" -pids "$pids" -clk-tck "$HZ") >"$out.json" 2>"$out.err"; then
		die "wsload failed against $name (round $round, $c WebSockets): $(cat "$out.err" "$out.json")"
	fi
	line=$(tail -n 1 "$out.json")
	[[ $line == '{'*'}' ]] || die "cannot read wsload's output: $line"
	printf '{"round":%d,"server":"%s",%s\n' "$round" "$name" "${line#\{}" >>"$T/runs.jsonl"
	"$BIN/report" ws-runs -last "$T/runs.jsonl" >&2
}

# idle_run PROXY: a fresh proxy, IDLE_CONNS idle WebSockets, RSS delta.
# With PROFILING set (fastserve only), the profiles instead.
idle_run() {
	local name=$1 rss0 rss1 rss2 fd0 fd1 wpid hold out deadline
	local -a pids
	start_proxy "$name"
	sleep 1
	mapfile -t pids < <(server_pids "$name")
	rss0=$(rss_kib "${pids[@]}")
	fd0=$(fd_count "${pids[@]}")
	out="$T/idle-$name.txt"
	[[ -p $T/idle.fifo ]] || mkfifo "$T/idle.fifo"
	exec {hold}<>"$T/idle.fifo" # wsload exits when this closes, even if the script is killed
	(ulimit -n "$NOFILE" && exec taskset -c "$CLIENT_CPU" "$BIN/wsload" -url "wss://127.0.0.1:${PORT[$name]}/" \
		-n "$IDLE_CONNS" -size "$SIZE" -setup-timeout "${IDLE_TIMEOUT}s") <"$T/idle.fifo" {hold}>&- >"$out" 2>&1 &
	wpid=$!
	STARTED[$wpid]=wsload
	deadline=$((SECONDS + IDLE_TIMEOUT + 10))
	until grep -q '^ready' "$out"; do
		kill -0 "$wpid" 2>/dev/null || die "wsload against $name failed: $(cat "$out")"
		((SECONDS < deadline)) || die "wsload against $name not ready after $((IDLE_TIMEOUT + 10)) s"
		sleep 0.2
	done
	sleep "$SETTLE"
	rss1=$(rss_kib "${pids[@]}")
	fd1=$(fd_count "${pids[@]}")
	sleep $((SETTLE_LATER - SETTLE))
	rss2=$(rss_kib "${pids[@]}")
	if [[ -n $PROFILING ]]; then
		profile_tunnels "$rss0" "$rss2"
	fi
	kill -TERM "$wpid" 2>/dev/null || true
	wait "$wpid" 2>/dev/null || true
	unset "STARTED[$wpid]"
	exec {hold}>&-
	stop_server "$name"
	[[ -n $PROFILING ]] && return
	printf '{"server":"%s","conns":%d,"rss_kib_before":%d,"rss_kib":%d,"rss_kib_later":%d,"settle_s":%d,"settle_later_s":%d,"fds_before":%d,"fds":%d,"nofile":%s}\n' \
		"$name" "$IDLE_CONNS" "$rss0" "$rss1" "$rss2" "$SETTLE" "$SETTLE_LATER" "$fd0" "$fd1" "$(json_string "$(grep -m1 '^nofile' "$out" || true)")" >>"$T/idle.jsonl"
	"$BIN/report" ws-idle -last "$T/idle.jsonl" >&2
}

# admin_get PATH prints fastserve's admin answer for PATH.
admin_get() {
	timeout -k 2 60 curl -fsS "http://127.0.0.1:$ADMIN_PORT$1"
}

# profile_tunnels RSS_BEFORE RSS_AFTER saves fastserve's heap profile with
# its idle tunnels open and writes what they hold, per tunnel, to
# $T/profile.md.
profile_tunnels() {
	local heap=${OUT%.md}-heap.pb.gz stats goroutines tunnels
	tunnels=$(admin_get /metrics | awk '/^fastserve_upstream_tunnels\{/ { n += $2 } END { print n + 0 }')
	goroutines=$(admin_get '/debug/pprof/goroutine?debug=1' | awk 'NR == 1 { print $NF }')
	admin_get '/debug/pprof/heap?gc=1' >"$heap" || die "cannot read fastserve's heap profile"
	stats=$(admin_get '/debug/pprof/heap?debug=1')
	{
		echo "A fresh fastserve with \`--admin-profiles\` and \`GODEBUG=memprofilerate=1\` (every allocation recorded), $IDLE_CONNS"
		echo "idle WebSockets as above, read ${SETTLE_LATER} s after the last was set up: $tunnels tunnels open"
		echo "(fastserve_upstream_tunnels), $goroutines goroutines, RSS $(awk -v a="$1" -v b="$2" -v n="$IDLE_CONNS" 'BEGIN { printf "%.1f", (b - a) / n }') KiB per tunnel"
		echo "(profiling's own records included). runtime.MemStats after a GC, per tunnel:"
		echo
		echo '| HeapInuse | HeapAlloc | heap objects | StackInuse | goroutines | heap idle, not returned (HeapIdle - HeapReleased) |'
		echo '|---|---|---|---|---|---|'
		awk -v n="$IDLE_CONNS" -v g="$goroutines" '/^# (HeapInuse|HeapAlloc|HeapObjects|HeapIdle|HeapReleased) = / { v[$2] = $4 }
			/^# Stack = / { v["Stack"] = $4 }
			END { printf "| %.2f KiB | %.2f KiB | %.1f | %.2f KiB | %.2f | %.2f KiB |\n", v["HeapInuse"] / n / 1024, v["HeapAlloc"] / n / 1024,
				v["HeapObjects"] / n, v["Stack"] / n / 1024, g / n, (v["HeapIdle"] - v["HeapReleased"]) / n / 1024 }' <<<"$stats"
		echo
		echo "Live heap per tunnel by allocating function (\`go tool pprof -sample_index=inuse_space -top\` on"
		echo "$(basename "$heap"), divided by $IDLE_CONNS; functions under 16 bytes per tunnel left out):"
		echo
		echo '| bytes per tunnel (flat) | cum | function |'
		echo '|---|---|---|'
		"$GO" tool pprof -sample_index=inuse_space -top -nodecount=40 -unit=B "$BIN/fastserve" "$heap" 2>/dev/null |
			awk -v n="$IDLE_CONNS" 'body && NF >= 6 { f = $1; c = $4; sub(/B$/, "", f); sub(/B$/, "", c)
				name = $6; for (i = 7; i <= NF; i++) name = name " " $i
				if (f / n >= 16) printf "| %.0f | %.0f | `%s` |\n", f / n, c / n, name }
				/^ *flat  *flat%/ { body = 1 }'
	} >"$T/profile.md"
	log "saved fastserve's heap profile to $heap"
}

# --- report -----------------------------------------------------------------

report() {
	local kernel cpu_model distro go_v nginx_v ssl_v fastserve_v fastserve_env commit
	kernel=$(uname -r)
	cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	# shellcheck source=/dev/null
	distro=$(. /etc/os-release && echo "$PRETTY_NAME")
	go_v=$("$GO" env GOVERSION)
	nginx_v="nginx not run"
	ssl_v=""
	if [[ -n ${NGINX:-} ]]; then
		nginx_v=$("$NGINX" -v 2>&1)
		ssl_v=$("$NGINX" -V 2>&1 | grep -m1 -o 'built with OpenSSL [^ ]*' || echo "OpenSSL unknown")
	fi
	fastserve_v=$("$BIN/fastserve" version)
	commit=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
	fastserve_env=$(env | grep '^FASTSERVE_' | sort | paste -sd ' ' || true)
	cat <<EOF
# fastserve and nginx as WebSocket proxies

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), run took $((SECONDS / 60)) min $((SECONDS % 60)) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)
- command: \`$ORIG_CMD\`, in effect \`ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS SIZE=$SIZE IDLE_CONNS=$IDLE_CONNS PROXIES=$PROXIES NGINX_TLS13_ORDER=$NGINX_TLS13_ORDER PROFILE=$PROFILE\`
- machine: $(nproc) CPUs, $cpu_model, Linux $kernel, $distro
- software: $fastserve_v at $commit; $go_v; $nginx_v $ssl_v
- method: wss:// (TLS 1.3, ECDSA P-256 certificate from \`fastserve cert\`) to the proxy, plain ws:// from the proxy to
  bench/wsecho; each proxy on CPU $SERVER_CPU (\`taskset\`), bench/wsload and wsecho on CPU $CLIENT_CPU; proxies alternated
  within each round; echo load: each WebSocket sends a $SIZE-byte binary message and waits for its echo (closed loop),
  ${WARMUP} s of warm-up then ${DURATION} s measured; proxy CPU = utime+stime of the whole process over the measured window
  from /proc/PID/stat (nginx: master + its one worker), which leaves out the set-up of the connections (full TLS
  handshakes, upgrades); latency from a message's write to its echo's end, as wsload sees it on a shared CPU; open-file
  limit $NOFILE for every process$NOFILE_NOTE.
- proxies: fastserve \`serve --proxy http://127.0.0.1:$ECHO_PORT --proxy-max-conns-per-client -1 --admin 127.0.0.1:$ADMIN_PORT\`${fastserve_env:+ with $fastserve_env} (its defaults:
  one listener, GOMAXPROCS 1 from its CPU set, tunnels idle out after 1 h); nginx 1 worker, \`proxy_pass\`,
  \`proxy_http_version 1.1\`, \`proxy_set_header Upgrade \$http_upgrade\`, \`proxy_set_header Connection "upgrade"\`,
  \`proxy_read_timeout 3600s\`, \`proxy_socket_keepalive on\`, \`so_keepalive=60s:10s:5\`, \`access_log off\`, TLS 1.3
  suite order: $NGINX_TLS13_ORDER (the suite each negotiated is under "Every run").
- the machine is shared: other work ran on both CPUs during the run (see the load average), so the figures are
  noisy; compare the per-round ratios, and their spread, rather than absolute rates.
EOF
	if [[ -s $T/runs.jsonl ]]; then
		cat <<EOF

## Echo throughput and latency, median of $ROUNDS round(s) [min-max]

EOF
		"$BIN/report" ws-throughput "$T/runs.jsonl"
	fi
	if [[ -s $T/idle.jsonl ]]; then
		cat <<EOF

## Memory per idle proxied WebSocket, $IDLE_CONNS WebSockets

Each proxy fresh, after one probe WebSocket; wsload (on CPU $CLIENT_CPU) opens the WebSockets, echoes one $SIZE-byte message
on each, and holds them; the proxy's RSS (VmRSS, nginx: master + worker) is read ${SETTLE} s after the last one is set up,
and again ${SETTLE_LATER} s after (a Go server returns freed memory to the system only after a collection). Each
WebSocket is two sockets in the proxy (open fds per WebSocket: 2). Kernel socket memory is not in RSS; the echo server's
memory is not counted.

EOF
		"$BIN/report" ws-idle "$T/idle.jsonl"
	fi
	if [[ -s $T/profile.md ]]; then
		cat <<EOF

## What fastserve's idle tunnels hold

EOF
		cat "$T/profile.md"
	fi
	if [[ -s $T/runs.jsonl ]]; then
		cat <<EOF

## Every run

EOF
		"$BIN/report" ws-runs "$T/runs.jsonl"
	fi
}

# --- main -------------------------------------------------------------------

main() {
	check_options
	[[ $(id -u) == 0 ]] || die "run as root (sudo bash $0): it may install nginx with apt-get and raises the open-file limit"
	(($(nproc) >= 2)) || die "needs 2 CPUs (proxy on CPU $SERVER_CPU, client and echo server on CPU $CLIENT_CPU), this machine has $(nproc)"
	T=$(mktemp -d /tmp/fastserve-websocket.XXXXXX)
	chmod 755 "$T" # nginx's worker runs as nobody
	BIN=$T/bin
	CERT=$T/cert.pem
	KEY=$T/key.pem
	HZ=$(getconf CLK_TCK)
	ECHO_PORT=$((BASE_PORT + 2))
	ADMIN_PORT=$((BASE_PORT + 3))
	declare -gA PORT=([fastserve]=$BASE_PORT [nginx]=$((BASE_PORT + 1)))
	pick_file_limit

	install_nginx
	find_go
	build
	mkdir -p "$T/cache"
	"$BIN/fastserve" cert --host 127.0.0.1,localhost --cert-file "$CERT" --key-file "$KEY" 2>>"$T/cert.log" >&2
	if [[ " ${PROXY_LIST[*]} " == *" nginx "* ]]; then
		nginx_conf
	fi
	start_echo

	local name round c
	: >"$T/runs.jsonl"
	if ((ROUNDS > 0)); then
		log "$((${#CONN_LIST[@]} * ${#PROXY_LIST[@]} * ROUNDS)) echo runs of ${DURATION} s (+${WARMUP} s warm-up)"
		for name in "${PROXY_LIST[@]}"; do
			start_proxy "$name"
		done
		for round in $(seq "$ROUNDS"); do
			for c in "${CONN_LIST[@]}"; do
				for name in "${PROXY_LIST[@]}"; do
					one_run "$round" "$c" "$name"
				done
			done
		done
		for name in "${PROXY_LIST[@]}"; do
			stop_server "$name"
		done
	fi

	: >"$T/idle.jsonl"
	if ((IDLE_CONNS > 0)); then
		for name in "${PROXY_LIST[@]}"; do
			idle_run "$name"
		done
		if [[ $PROFILE == 1 && " ${PROXY_LIST[*]} " == *" fastserve "* ]]; then
			log "fastserve again, profiled"
			PROFILING=1
			idle_run fastserve
			PROFILING=
		fi
	fi

	report | tee "$OUT"
	log "wrote $OUT"
}

main
