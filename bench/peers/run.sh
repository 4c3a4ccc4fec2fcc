#!/usr/bin/env bash
# Side-by-side benchmark of fastserve and its peers (plain fasthttp, net/http,
# nginx, and the crypto/tls ceiling) on long-lived keep-alive HTTPS (TLS 1.3,
# ECDSA P-256, 13-byte body), measured the way the project compares servers:
#
#   - each server pinned to CPU 0, wrk -t1 pinned to CPU 1;
#   - servers alternated run by run (round 1: A B C D, round 2: A B C D, ...);
#   - per run: wrk's req/s, and the server's CPU time (utime+stime of the whole
#     process, all threads; for nginx master + worker) from /proc/PID/stat, which
#     gives requests per server CPU-second;
#   - medians over the rounds, min-max spreads, and the ratio to nginx as the
#     median of the per-round ratios (bench/peers/report prints the tables from
#     the raw runs, with the bench package's statistics);
#   - then each server alone, fresh, holding N idle TLS connections (one GET
#     each): (VmRSS after - VmRSS before) / N.
#
# Usage (as root, on Debian; installs nginx-light and wrk when missing):
#   bash bench/peers/run.sh [-r ROUNDS] [-d SECONDS] [-w SECONDS] [-c CONNS]
#                           [-i IDLE_CONNS] [-s SERVERS] [-o FILE]
# Every option also reads from the environment: ROUNDS=3 DURATION=10 WARMUP=2
# CONNS=100,1000 IDLE_CONNS=10000
# SERVERS=fastserve,fastserve-handler,fasthttp,nethttp,nginx,ceiling
# OUT=bench/peers/results.md BASE_PORT=18443 KEEP_TMP=0 (1 keeps the temp dir)
# NGINX_TLS13_ORDER=go (nginx prefers AES-128-GCM, as Go does; openssl = OpenSSL's
# order, where wrk gets AES-256-GCM from nginx).
# IDLE_CONNS=0 skips the memory test. FASTSERVE_* variables (fastserve's own
# settings, such as FASTSERVE_MAX_HEADER_BYTES=4096) reach fastserve and are
# named in the report. Traffic goes to 127.0.0.1 only.
set -euo pipefail

ORIG_PWD=$PWD
ORIG_CMD="bash $0${*:+ $*}"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SCRIPT=run.sh
# shellcheck source=bench/peers/common.sh
. "$REPO/bench/peers/common.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-100,1000}
IDLE_CONNS=${IDLE_CONNS:-10000}
SERVERS=${SERVERS:-fastserve,fastserve-handler,fasthttp,nethttp,nginx,ceiling}
OUT=${OUT:-$REPO/bench/peers/results.md}
BASE_PORT=${BASE_PORT:-18443}
KEEP_TMP=${KEEP_TMP:-0}
NGINX_TLS13_ORDER=${NGINX_TLS13_ORDER:-go}

parse_options r:ROUNDS d:DURATION w:WARMUP c:CONNS i:IDLE_CONNS s:SERVERS o:OUT -- "$@"

SERVER_CPU=0
CLIENT_CPU=1
NOFILE=65536 # pick_file_limit lowers it to the hard limit if it must
NOFILE_NOTE=""
URL_PATH=/index.html
BODY='Hello, World!'
IDLE_TIMEOUT=180 # seconds to set up the idle connections
SETTLE=3         # seconds between "ready" and reading the RSS
SETTLE_LATER=20  # seconds between "ready" and reading it again (a Go server returns freed memory late)

check_options() {
	local v
	for v in ROUNDS DURATION IDLE_CONNS BASE_PORT; do
		[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
	done
	[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a whole number of seconds, got '$WARMUP'"
	((ROUNDS >= 1)) || die "ROUNDS must be >= 1, got $ROUNDS"
	((DURATION >= 1)) || die "DURATION must be >= 1 second, got $DURATION"
	[[ $CONNS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "CONNS must be a comma-separated list of counts, got '$CONNS'"
	IFS=, read -ra CONN_LIST <<<"$CONNS"
	IFS=, read -ra SERVER_LIST <<<"$SERVERS"
	for v in "${SERVER_LIST[@]}"; do
		case $v in
		fastserve | fastserve-handler | fasthttp | nethttp | nginx | ceiling) ;;
		*) die "unknown server '$v' in SERVERS: want fastserve, fastserve-handler, fasthttp, nethttp, nginx or ceiling" ;;
		esac
	done
	[[ $NGINX_TLS13_ORDER == go || $NGINX_TLS13_ORDER == openssl ]] ||
		die "NGINX_TLS13_ORDER must be go or openssl, got '$NGINX_TLS13_ORDER'"
	[[ $OUT = /* ]] || OUT=$ORIG_PWD/$OUT
	[[ -d $(dirname "$OUT") ]] || die "no directory for the output file $OUT"
}

# --- processes --------------------------------------------------------------

start_server() {
	local name=$1 port=${PORT[$1]}
	port_in_use "$port" && die "127.0.0.1:$port (for $name) is in use: stop what holds it or set BASE_PORT"
	case $name in
	fastserve)
		launch "$name" env XDG_CACHE_HOME="$T/cache" "$BIN/fastserve" serve \
			--addr "127.0.0.1:$port" --cert "$CERT" --key "$KEY" --root "$WWW" --admin "127.0.0.1:$((port + 100))"
		;;
	fastserve-handler)
		launch "$name" "$BIN/fastservehandler" -addr "127.0.0.1:$port" -cert "$CERT" -key "$KEY" -admin "127.0.0.1:$((port + 100))"
		;;
	ceiling) launch "$name" "$BIN/ceiling" -addr "127.0.0.1:$port" -cert "$CERT" -key "$KEY" ;;
	fasthttp) launch "$name" "$BIN/fasthttpserver" -addr "127.0.0.1:$port" -cert "$CERT" -key "$KEY" ;;
	nethttp) launch "$name" "$BIN/nethttpserver" -addr "127.0.0.1:$port" -cert "$CERT" -key "$KEY" ;;
	nginx) launch "$name" "$NGINX" -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" ;;
	esac
	local deadline=$((SECONDS + 15))
	until probe "$name" >"$T/$name.probe" 2>&1; do
		if ! kill -0 "${PID[$name]}" 2>/dev/null; then
			tail -n 20 "$T/$name.log" "$T/$name.probe" >&2 || true
			die "$name exited at start (log above)"
		fi
		((SECONDS < deadline)) || die "$name does not answer on 127.0.0.1:$port after 15 s (see $T/$name.log)"
		sleep 0.2
	done
	grep -qx "body: ${#BODY} bytes: \"$BODY\"" "$T/$name.probe" ||
		die "$name does not serve the ${#BODY}-byte body on $URL_PATH: $(cat "$T/$name.probe")"
	if [[ $name == nginx ]]; then
		nginx_one_worker
	fi
}

# probe does one GET on one TLS 1.3 connection and prints the answer.
probe() {
	timeout -k 2 10 "$BIN/idleconns" -addr "127.0.0.1:${PORT[$1]}" -n 1 -path "$URL_PATH" -show -timeout 3s </dev/null
}

# --- set-up -----------------------------------------------------------------

install_deps() {
	local -a pkgs=()
	command -v wrk >/dev/null 2>&1 || pkgs+=(wrk)
	find_nginx || pkgs+=(nginx)
	((${#pkgs[@]} == 0)) && return
	apt_install "${pkgs[@]}"
	command -v wrk >/dev/null 2>&1 || die "wrk is still missing after apt-get install"
	find_nginx || die "nginx is still missing after apt-get install"
}

build() {
	log "building fastserve, fastservehandler, fasthttpserver, nethttpserver, ceiling, idleconns, report into $BIN"
	(
		cd "$REPO"
		"$GO" build -o "$BIN/fastserve" ./cmd/fastserve
		"$GO" build -o "$BIN/fastservehandler" ./bench/peers/fastservehandler
		"$GO" build -o "$BIN/fasthttpserver" ./bench/peers/fasthttpserver
		"$GO" build -o "$BIN/ceiling" ./bench/peers/ceiling
		"$GO" build -o "$BIN/nethttpserver" ./bench/peers/nethttpserver
		"$GO" build -o "$BIN/idleconns" ./bench/peers/idleconns
		"$GO" build -o "$BIN/report" ./bench/peers/report
	) || die "go build failed"
}

# nginx_conf writes nginx's own configuration: one worker, its files under $T.
nginx_conf() {
	local port=${PORT[nginx]} somaxconn conns=0 c
	somaxconn=$(cat /proc/sys/net/core/somaxconn)
	for c in "${CONN_LIST[@]}"; do
		((c > conns)) && conns=$c
	done
	((IDLE_CONNS > conns)) && conns=$IDLE_CONNS
	mkdir -p "$T/nginx/tmp"
	cat >"$T/nginx/nginx.conf" <<EOF
$(nginx_conf_head "$((conns + 1024))")
http {
    types { text/html html; }
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path $T/nginx/tmp/client_body;
$(nginx_temp_paths "$T/nginx/tmp")
    keepalive_requests 1000000;
    keepalive_timeout 620s;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    server {
        # backlog as the Go servers have it (net.core.somaxconn); nginx's own default is 511
        listen 127.0.0.1:$port ssl so_keepalive=60s:10s:5 backlog=$somaxconn;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
$(nginx_tls13_suites "$NGINX_TLS13_ORDER")
        root $WWW;
    }
}
EOF
	"$NGINX" -t -q -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" ||
		die "nginx -t rejects $T/nginx/nginx.conf"
}

# pick_file_limit sets NOFILE to 65536, or to the hard limit where that
# cannot be raised (a container without CAP_SYS_RESOURCE).
pick_file_limit() {
	NOFILE=65536
	if ! (ulimit -n "$NOFILE") 2>/dev/null; then
		NOFILE=$(ulimit -Hn)
		NOFILE_NOTE=" (65536 refused: the hard limit here is $NOFILE)"
		log "cannot raise the open-file limit to 65536; using the hard limit $NOFILE"
	fi
	local c need=$((IDLE_CONNS + 256))
	for c in "${CONN_LIST[@]}"; do
		((c + 256 > need)) && need=$((c + 256))
	done
	((NOFILE >= need)) || die "the open-file limit $NOFILE is too low for $need descriptors; lower IDLE_CONNS or CONNS"
	# fastserve admits at most 7/8 of its descriptor limit by default
	# (--max-conns 0) and resets the connections past it.
	if [[ ",$SERVERS," == *,fastserve,* || ",$SERVERS," == *,fastserve-handler,* ]] && ((IDLE_CONNS > NOFILE * 7 / 8)); then
		die "IDLE_CONNS=$IDLE_CONNS is above what fastserve admits by default under the open-file limit $NOFILE (7/8 of it: $((NOFILE * 7 / 8))); lower IDLE_CONNS"
	fi
}

# --- runs -------------------------------------------------------------------

# one_run ROUND CONNS SERVER appends the run to runs.jsonl and prints its line.
one_run() {
	local round=$1 c=$2 name=$3 url out figures t0 t1 u0 u1 requests rps errors rss sampler
	local -a pids
	url="https://127.0.0.1:${PORT[$name]}$URL_PATH"
	out="$T/wrk-r$round-c$c-$name.txt"
	if ((WARMUP > 0)); then
		wrk_run "$c" "$WARMUP" "$url" >"$out.warmup" 2>&1 || die "wrk warm-up failed for $name: $(cat "$out.warmup")"
	fi
	mapfile -t pids < <(server_pids "$name")
	read -r t0 u0 < <(cpu_ticks "${pids[@]}")
	# The server's memory while it serves the c connections, halfway through.
	(sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')" && rss_kib "${pids[@]}" >"$out.rss") &
	sampler=$!
	wrk_run "$c" "$DURATION" "$url" >"$out" 2>&1 || die "wrk failed for $name: $(cat "$out")"
	read -r t1 u1 < <(cpu_ticks "${pids[@]}")
	wait "$sampler" || true
	rss=$(cat "$out.rss" 2>/dev/null || echo 0)
	figures=$(wrk_figures "$out") || exit 1
	read -r requests rps errors <<<"$figures"
	printf '{"round":%d,"conns":%d,"server":"%s","seconds":%d,"requests":%d,"rps":%s,"errors":%d,"cpu_ticks":%d,"user_ticks":%d,"clk_tck":%d,"rss_kib":%d}\n' \
		"$round" "$c" "$name" "$DURATION" "$requests" "$rps" "$errors" $((t1 - t0)) $((u1 - u0)) "$HZ" "$rss" >>"$T/runs.jsonl"
	"$BIN/report" runs -last "$T/runs.jsonl" >&2
}

# idle_run SERVER: a fresh server, IDLE_CONNS idle TLS connections, RSS delta.
idle_run() {
	local name=$1 rss0 rss1 rss2 fd0 fd1 ipid hold out deadline
	local -a pids
	start_server "$name"
	sleep 1
	mapfile -t pids < <(server_pids "$name")
	rss0=$(rss_kib "${pids[@]}")
	fd0=$(fd_count "${pids[@]}")
	out="$T/idle-$name.txt"
	[[ -p $T/idle.fifo ]] || mkfifo "$T/idle.fifo"
	exec {hold}<>"$T/idle.fifo" # idleconns exits when this closes, even if the script is killed
	(ulimit -n "$NOFILE" && exec taskset -c "$CLIENT_CPU" "$BIN/idleconns" -addr "127.0.0.1:${PORT[$name]}" \
		-n "$IDLE_CONNS" -path "$URL_PATH" -timeout "${IDLE_TIMEOUT}s") <"$T/idle.fifo" {hold}>&- >"$out" 2>&1 &
	ipid=$!
	STARTED[$ipid]=idleconns
	deadline=$((SECONDS + IDLE_TIMEOUT + 10))
	until grep -q '^ready' "$out"; do
		kill -0 "$ipid" 2>/dev/null || die "idleconns against $name failed: $(cat "$out")"
		((SECONDS < deadline)) || die "idleconns against $name not ready after $((IDLE_TIMEOUT + 10)) s"
		sleep 0.2
	done
	sleep "$SETTLE"
	rss1=$(rss_kib "${pids[@]}")
	fd1=$(fd_count "${pids[@]}")
	sleep $((SETTLE_LATER - SETTLE))
	rss2=$(rss_kib "${pids[@]}")
	kill -TERM "$ipid" 2>/dev/null || true
	wait "$ipid" 2>/dev/null || true
	unset "STARTED[$ipid]"
	exec {hold}>&-
	stop_server "$name"
	printf '{"server":"%s","conns":%d,"rss_kib_before":%d,"rss_kib":%d,"rss_kib_later":%d,"settle_s":%d,"settle_later_s":%d,"fds_before":%d,"fds":%d,"nofile":%s}\n' \
		"$name" "$IDLE_CONNS" "$rss0" "$rss1" "$rss2" "$SETTLE" "$SETTLE_LATER" "$fd0" "$fd1" "$(json_string "$(grep -m1 '^nofile' "$out" || true)")" >>"$T/idle.jsonl"
	"$BIN/report" idle -last "$T/idle.jsonl" >&2
}

# --- report -----------------------------------------------------------------

report() {
	local kernel cpu_model distro go_v nginx_v ssl_v wrk_v fastserve_v
	kernel=$(uname -r)
	cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	# shellcheck source=/dev/null
	distro=$(. /etc/os-release && echo "$PRETTY_NAME")
	go_v=$("$GO" env GOVERSION)
	nginx_v=$("$NGINX" -v 2>&1)
	ssl_v=$("$NGINX" -V 2>&1 | grep -m1 -o 'built with OpenSSL [^ ]*' || echo "OpenSSL unknown")
	wrk_v=$(wrk -v 2>&1 | head -n 1 || true)
	fastserve_v=$("$BIN/fastserve" version)
	local fastserve_env
	fastserve_env=$(env | grep '^FASTSERVE_' | sort | paste -sd ' ' || true)
	cat <<EOF
# fastserve and its peers: long-lived keep-alive HTTPS

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), run took $((SECONDS / 60)) min $((SECONDS % 60)) s
- command: \`$ORIG_CMD\`, in effect \`ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS IDLE_CONNS=$IDLE_CONNS SERVERS=$SERVERS NGINX_TLS13_ORDER=$NGINX_TLS13_ORDER\`
- machine: $(nproc) CPUs, $cpu_model, Linux $kernel, $distro
- software: $fastserve_v; $go_v; $nginx_v $ssl_v; ${wrk_v%% Copyright*}
- method: TLS 1.3, ECDSA P-256 certificate from \`fastserve cert\`, GET $URL_PATH answering the ${#BODY}-byte body "$BODY", HTTP/1.1 keep-alive;
  each server on CPU $SERVER_CPU (\`taskset\`), \`wrk -t1\` on CPU $CLIENT_CPU; servers alternated within each round;
  server CPU = utime+stime of the whole process from /proc/PID/stat (nginx: master + its one worker), which includes
  the full handshakes of the run's connections; open-file limit $NOFILE for every process$NOFILE_NOTE.
- servers: fastserve \`serve --root DIR --admin 127.0.0.1:PORT\`${fastserve_env:+ with $fastserve_env} (its defaults: keep-alive 60s/10s/5, 1 listener per GOMAXPROCS = 1,
  timeouts, limits, counters, idle parking on, admin listener on); fastserve-handler: the server package with the same defaults
  and admin listener, an in-process handler answering the body (bench/peers/fastservehandler);
  fasthttp \`ServeTLS\` on \`net.Listen\` (defaults; keep-alive is Go's 15s/15s/9, as fasthttp's TCPKeepalive is ignored under TLS);
  net/http \`ServeTLS\` on \`ListenConfig{KeepAlive: 60s}\`; nginx 1 worker, \`so_keepalive=60s:10s:5\`, \`open_file_cache\`,
  \`keepalive_requests 1000000\`, \`keepalive_timeout 620s\`, \`access_log off\`, listen backlog = net.core.somaxconn as the Go servers,
  TLS 1.3 suite order: $NGINX_TLS13_ORDER (go: AES-128-GCM first, as the Go servers pick; see the cipher each negotiated with OpenSSL below);
  ceiling: bench.Ceiling on \`tls.Listen\`, no HTTP parsing, a prebuilt response (what Go's crypto/tls allows).

## Throughput, median of $ROUNDS round(s) [min-max]

EOF
	"$BIN/report" throughput "$T/runs.jsonl"
	if [[ -s $T/idle.jsonl ]]; then
		cat <<EOF

## Memory per idle keep-alive TLS connection, $IDLE_CONNS connections

Each server fresh, after one probe request; \`idleconns\` (on CPU $CLIENT_CPU) opens the connections, sends one GET on each,
and holds them; RSS (VmRSS, nginx: master + worker) is read ${SETTLE} s after the last one is set up, and again
${SETTLE_LATER} s after (a Go server returns freed memory to the system only after a collection). Kernel socket
memory is not in RSS.

EOF
		"$BIN/report" idle "$T/idle.jsonl"
	fi
	cat <<EOF

## Every run

EOF
	"$BIN/report" runs "$T/runs.jsonl"
	echo
	echo "## What each server answers (first response to the Go TLS 1.3 probe)"
	local name
	for name in "${SERVER_LIST[@]}"; do
		echo
		echo "$name:"
		echo
		echo '```'
		grep -v '^nofile\|^ready' "$T/$name.probe.first"
		echo '```'
	done
}

# --- main -------------------------------------------------------------------

main() {
	check_options
	[[ $(id -u) == 0 ]] || die "run as root (sudo bash $0): it installs packages with apt-get and raises the open-file limit"
	(($(nproc) >= 2)) || die "needs 2 CPUs (server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU), this machine has $(nproc)"
	T=$(mktemp -d /tmp/fastserve-peers.XXXXXX)
	chmod 755 "$T" # nginx's worker runs as nobody
	BIN=$T/bin
	WWW=$T/www
	CERT=$T/cert.pem
	KEY=$T/key.pem
	HZ=$(getconf CLK_TCK)
	pick_file_limit
	declare -gA PORT=([fastserve]=$BASE_PORT [fasthttp]=$((BASE_PORT + 1)) [nethttp]=$((BASE_PORT + 2)) [nginx]=$((BASE_PORT + 3))
		[fastserve-handler]=$((BASE_PORT + 4)) [ceiling]=$((BASE_PORT + 5)))

	install_deps
	find_go
	build
	mkdir -p "$WWW" "$T/cache"
	printf '%s' "$BODY" >"$WWW/index.html"
	chmod 755 "$WWW"
	chmod 644 "$WWW/index.html"
	"$BIN/fastserve" cert --host 127.0.0.1,localhost --cert-file "$CERT" --key-file "$KEY" 2>>"$T/cert.log"
	find_nginx
	nginx_conf

	local range
	range=$(tr -s '\t ' - </proc/sys/net/ipv4/ip_local_port_range)
	log "ephemeral ports $range; $((${#CONN_LIST[@]} * ${#SERVER_LIST[@]} * ROUNDS)) runs of ${DURATION} s (+${WARMUP} s warm-up)"

	local name round c
	for name in "${SERVER_LIST[@]}"; do
		start_server "$name"
		cp "$T/$name.probe" "$T/$name.probe.first"
		openssl_tls "${PORT[$name]}" >>"$T/$name.probe.first"
	done
	: >"$T/runs.jsonl"
	for round in $(seq "$ROUNDS"); do
		for c in "${CONN_LIST[@]}"; do
			for name in "${SERVER_LIST[@]}"; do
				one_run "$round" "$c" "$name"
			done
		done
	done
	for name in "${SERVER_LIST[@]}"; do
		stop_server "$name"
	done

	: >"$T/idle.jsonl"
	if ((IDLE_CONNS > 0)); then
		for name in "${SERVER_LIST[@]}"; do
			idle_run "$name"
		done
	fi

	report | tee "$OUT"
	log "wrote $OUT"
}

main
