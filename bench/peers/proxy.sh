#!/usr/bin/env bash
# Side-by-side benchmark of fastserve as a TLS-terminating reverse proxy
# against nginx, HAProxy and Caddy, all in front of the same upstream,
# measured as bench/peers/run.sh measures servers:
#
#   - each proxy pinned to CPU 0 (one worker: nginx worker_processes 1,
#     HAProxy nbthread 1, GOMAXPROCS=1 for fastserve and Caddy); wrk -t1 and
#     the upstream (bench/peers/upstream: plain HTTP/1.1 fasthttp answering
#     from memory, GOMAXPROCS=1) pinned together to CPU 1;
#   - clients speak TLS 1.3 (ECDSA P-256, one certificate for every proxy)
#     over long-lived keep-alive connections; each proxy speaks plain
#     HTTP/1.1 to the upstream on a keep-alive pool of its own: fastserve's
#     defaults (--proxy-max-conns 512), nginx `keepalive UPSTREAM_KEEPALIVE`
#     in an upstream block with proxy_http_version 1.1 and Connection "",
#     HAProxy `http-reuse always`, Caddy reverse_proxy's default transport;
#     each passes Host and adds X-Forwarded-For and X-Forwarded-Proto
#     (fastserve and Caddy add their other forwarding headers by default);
#   - proxies alternated run by run (round 1: A B C D, round 2: A B C D,
#     ...), for each body and connection count;
#   - per run: wrk's req/s; the proxy's CPU time (utime+stime of the whole
#     process, all threads; nginx master + worker) from /proc/PID/stat, which
#     gives requests per proxy CPU-second; the upstream's CPU time; and the
#     connections the upstream accepted during the run (a proxy whose
#     keep-alive pool does not hold opens new ones);
#   - medians over the rounds, min-max spreads, and the ratio to nginx as the
#     median of the per-round ratios (bench/peers/report proxy).
#
# Usage (as root, on Debian; installs nginx-light, haproxy, caddy and wrk when
# missing; a proxy that cannot be had is left out, saying why):
#   bash bench/peers/proxy.sh [-r ROUNDS] [-d SECONDS] [-w SECONDS] [-c CONNS]
#                             [-b BODIES] [-s SERVERS] [-o FILE]
# Every option also reads from the environment: ROUNDS=5 DURATION=8 WARMUP=2
# CONNS=100,1000 BODIES=13B,4KiB (13B: "Hello, World!" as run.sh serves;
# 4KiB: a 4,096-byte JSON document; 64KiB: 65,536 bytes of JSON, which
# fastserve streams rather than reads whole) SERVERS=fastserve,nginx,haproxy,caddy
# OUT=bench/peers/results-proxy.md BASE_PORT=19400 (the proxies on BASE_PORT
# to +3, the upstream on +10, fastserve's admin listener on +20)
# UPSTREAM_KEEPALIVE=512 (nginx's idle upstream connections per worker, as
# fastserve's --proxy-max-conns) KEEP_TMP=0 (1 keeps the temp dir)
# TLS13_ORDER=go (nginx and HAProxy prefer AES-128-GCM, as Go does; openssl =
# OpenSSL's order, where wrk gets AES-256-GCM from them).
# FASTSERVE_* variables (fastserve's own settings) reach fastserve and are
# named in the report. Traffic goes to 127.0.0.1 only.
set -euo pipefail

ORIG_PWD=$PWD
ORIG_CMD="bash $0${*:+ $*}"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SCRIPT=proxy.sh
# shellcheck source=bench/peers/common.sh
. "$REPO/bench/peers/common.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-100,1000}
BODIES=${BODIES:-13B,4KiB}
SERVERS=${SERVERS:-fastserve,nginx,haproxy,caddy}
OUT=${OUT:-$REPO/bench/peers/results-proxy.md}
BASE_PORT=${BASE_PORT:-19400}
UPSTREAM_KEEPALIVE=${UPSTREAM_KEEPALIVE:-512}
KEEP_TMP=${KEEP_TMP:-0}
TLS13_ORDER=${TLS13_ORDER:-go}

parse_options r:ROUNDS d:DURATION w:WARMUP c:CONNS b:BODIES s:SERVERS o:OUT -- "$@"

SERVER_CPU=0
CLIENT_CPU=1
NOFILE=65536
NOFILE_NOTE=""
declare -A BODY_PATH=([13B]=/index.html [4KiB]=/4k.json [64KiB]=/64k.json)
declare -A BODY_BYTES=([13B]=13 [4KiB]=4096 [64KiB]=65536)
SKIPPED=() # "proxy: why", for the report

check_options() {
	local v
	for v in ROUNDS DURATION WARMUP BASE_PORT UPSTREAM_KEEPALIVE; do
		[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
	done
	((ROUNDS >= 1)) || die "ROUNDS must be >= 1, got $ROUNDS"
	((DURATION >= 1)) || die "DURATION must be >= 1 second, got $DURATION"
	((UPSTREAM_KEEPALIVE >= 1)) || die "UPSTREAM_KEEPALIVE must be >= 1, got $UPSTREAM_KEEPALIVE"
	((BASE_PORT >= 1024 && BASE_PORT + 20 <= 65535)) || die "BASE_PORT must be in 1024-65515, got $BASE_PORT"
	[[ $CONNS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "CONNS must be a comma-separated list of counts, got '$CONNS'"
	IFS=, read -ra CONN_LIST <<<"$CONNS"
	IFS=, read -ra BODY_LIST <<<"$BODIES"
	for v in "${BODY_LIST[@]}"; do
		[[ -n ${BODY_PATH[$v]:-} ]] || die "unknown body '$v' in BODIES: want 13B, 4KiB or 64KiB"
	done
	IFS=, read -ra SERVER_LIST <<<"$SERVERS"
	for v in "${SERVER_LIST[@]}"; do
		case $v in
		fastserve | nginx | haproxy | caddy) ;;
		*) die "unknown proxy '$v' in SERVERS: want fastserve, nginx, haproxy or caddy" ;;
		esac
	done
	[[ $TLS13_ORDER == go || $TLS13_ORDER == openssl ]] || die "TLS13_ORDER must be go or openssl, got '$TLS13_ORDER'"
	[[ $OUT = /* ]] || OUT=$ORIG_PWD/$OUT
	[[ -d $(dirname "$OUT") ]] || die "no directory for the output file $OUT"
}

# pick_file_limit sets NOFILE to 65536, or to the hard limit where that
# cannot be raised (a container without CAP_SYS_RESOURCE). A proxy holds
# two descriptors a request in flight: the client's and the upstream's.
pick_file_limit() {
	if ! (ulimit -n "$NOFILE") 2>/dev/null; then
		NOFILE=$(ulimit -Hn)
		NOFILE_NOTE=" (65536 refused: the hard limit here is $NOFILE)"
	fi
	local c need=0
	for c in "${CONN_LIST[@]}"; do
		((2 * c + 1024 > need)) && need=$((2 * c + 1024))
	done
	((NOFILE >= need)) || die "the open-file limit $NOFILE is too low for $need descriptors; lower CONNS"
}

# --- set-up -----------------------------------------------------------------

find_haproxy() {
	HAPROXY=$(command -v haproxy 2>/dev/null || true)
	[[ -z $HAPROXY && -x /usr/sbin/haproxy ]] && HAPROXY=/usr/sbin/haproxy
	[[ -n $HAPROXY ]]
}

find_caddy() {
	CADDY=$(command -v caddy 2>/dev/null || true)
	[[ -n $CADDY ]]
}

wants() { [[ ",$SERVERS," == *,$1,* ]]; }

# install_deps installs what is missing from Debian; a proxy Debian does not
# have here (Caddy is in Debian 12, bookworm, and later) is left out.
install_deps() {
	local -a pkgs=()
	command -v wrk >/dev/null 2>&1 || pkgs+=(wrk)
	if wants nginx; then find_nginx || pkgs+=(nginx); fi
	if wants haproxy; then find_haproxy || pkgs+=(haproxy); fi
	if wants caddy && ! find_caddy; then
		if apt-cache show caddy >/dev/null 2>&1; then
			pkgs+=(caddy)
		else
			# apt-cache knows only what the last apt-get update fetched.
			apt-get update -qq >/dev/null 2>&1 || true
			if apt-cache show caddy >/dev/null 2>&1; then
				pkgs+=(caddy)
			else
				skip caddy "no caddy in PATH and no Debian package caddy here (Debian has it from 12, bookworm); put a caddy binary in PATH to include it"
			fi
		fi
	fi
	apt_install "${pkgs[@]}"
	command -v wrk >/dev/null 2>&1 || die "wrk is still missing after apt-get install"
	if wants nginx; then find_nginx || die "nginx is still missing after apt-get install"; fi
	if wants haproxy; then find_haproxy || die "haproxy is still missing after apt-get install"; fi
	if wants caddy; then find_caddy || skip caddy "caddy is still missing after apt-get install"; fi
	return 0
}

# skip NAME WHY leaves a proxy out of the runs, and says why in the log and
# the report.
skip() {
	log "leaving $1 out: $2"
	SKIPPED+=("$1: $2")
	local -a keep=()
	local s
	for s in "${SERVER_LIST[@]}"; do
		[[ $s == "$1" ]] || keep+=("$s")
	done
	SERVER_LIST=("${keep[@]}")
	SERVERS=$(
		IFS=,
		echo "${SERVER_LIST[*]}"
	)
}

build() {
	log "building fastserve, upstream, idleconns, report into $BIN"
	(
		cd "$REPO"
		"$GO" build -o "$BIN/fastserve" ./cmd/fastserve
		"$GO" build -o "$BIN/upstream" ./bench/peers/upstream
		"$GO" build -o "$BIN/idleconns" ./bench/peers/idleconns
		"$GO" build -o "$BIN/report" ./bench/peers/report
	) || die "go build failed"
}

max_conns() {
	local c max=0
	for c in "${CONN_LIST[@]}"; do
		((c > max)) && max=$c
	done
	echo "$max"
}

# nginx_conf writes nginx's configuration: one worker, its files under $T.
nginx_conf() {
	local port=${PORT[nginx]} somaxconn
	somaxconn=$(cat /proc/sys/net/core/somaxconn)
	mkdir -p "$T/nginx/tmp"
	cat >"$T/nginx/nginx.conf" <<EOF
$(nginx_conf_head "$((2 * $(max_conns) + 1024))")
http {
    access_log off;
    client_body_temp_path $T/nginx/tmp/client_body;
$(nginx_temp_paths "$T/nginx/tmp")
    keepalive_requests 1000000;
    keepalive_timeout 620s;
    upstream app {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive $UPSTREAM_KEEPALIVE;
    }
    server {
        listen 127.0.0.1:$port ssl so_keepalive=60s:10s:5 backlog=$somaxconn;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
$(nginx_tls13_suites "$TLS13_ORDER")
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
	"$NGINX" -t -q -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" ||
		die "nginx -t rejects $T/nginx/nginx.conf"
}

# haproxy_conf writes HAProxy's: one process, one thread, in the
# foreground; the certificate and key in one PEM file, as it wants them.
haproxy_conf() {
	local port=${PORT[haproxy]} suites=""
	cat "$CERT" "$KEY" >"$T/haproxy.pem"
	if [[ $TLS13_ORDER == go ]]; then
		suites="    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"$'\n'
	fi
	cat >"$T/haproxy.cfg" <<EOF
# Written by bench/peers/proxy.sh; run as haproxy -db -f $T/haproxy.cfg
global
    nbthread 1
    maxconn $((2 * $(max_conns) + 1024))
    ssl-default-bind-options ssl-min-ver TLSv1.2
$suites
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 620s
    timeout http-keep-alive 620s
    timeout http-request 10s
    timeout server 60s

frontend tls
    bind 127.0.0.1:$port ssl crt $T/haproxy.pem
    option forwardfor
    http-request set-header X-Forwarded-Proto https
    default_backend app

backend app
    http-reuse always
    server app 127.0.0.1:$UPSTREAM_PORT
EOF
	"$HAPROXY" -c -q -f "$T/haproxy.cfg" >"$T/haproxy.check" 2>&1 ||
		die "haproxy -c rejects $T/haproxy.cfg: $(cat "$T/haproxy.check")"
}

# caddy_conf writes Caddy's Caddyfile: the site on its port with the same
# certificate, no admin endpoint, no HTTP listener, HTTP/1.1 and HTTP/2 (no
# HTTP/3: no UDP listener), its state under $T.
caddy_conf() {
	local port=${PORT[caddy]}
	mkdir -p "$T/caddy"
	cat >"$T/caddy/Caddyfile" <<EOF
# Written by bench/peers/proxy.sh; run as caddy run --config $T/caddy/Caddyfile --adapter caddyfile
{
    admin off
    auto_https disable_redirects
    http_port $((BASE_PORT + 9))
    storage file_system $T/caddy/data
    servers {
        protocols h1 h2
    }
}
https://127.0.0.1:$port {
    tls $CERT $KEY
    reverse_proxy 127.0.0.1:$UPSTREAM_PORT
}
EOF
	HOME=$T/caddy XDG_DATA_HOME=$T/caddy/data XDG_CONFIG_HOME=$T/caddy/config \
		"$CADDY" validate --config "$T/caddy/Caddyfile" --adapter caddyfile >"$T/caddy/validate.log" 2>&1 ||
		die "caddy validate rejects $T/caddy/Caddyfile: $(tail -n 5 "$T/caddy/validate.log")"
}

# --- processes --------------------------------------------------------------

start_upstream() {
	port_in_use "$UPSTREAM_PORT" && die "127.0.0.1:$UPSTREAM_PORT (for the upstream) is in use: stop what holds it or set BASE_PORT"
	launch_on "$CLIENT_CPU" upstream env GOMAXPROCS=1 "$BIN/upstream" -addr "127.0.0.1:$UPSTREAM_PORT"
	local deadline=$((SECONDS + 10))
	until upstream_accepted >/dev/null 2>&1; do
		kill -0 "${PID[upstream]}" 2>/dev/null || die "the upstream exited at start: $(tail -n 5 "$T/upstream.log")"
		((SECONDS < deadline)) || die "the upstream does not answer on 127.0.0.1:$UPSTREAM_PORT after 10 s"
		sleep 0.2
	done
}

# upstream_accepted prints the connections the upstream has accepted (the
# look itself is one of them).
upstream_accepted() {
	local fd line n=
	{ exec {fd}<>"/dev/tcp/127.0.0.1/$UPSTREAM_PORT"; } 2>/dev/null || return 1
	printf 'GET /_accepted HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&"$fd"
	while IFS= read -r -t 5 line <&"$fd"; do
		line=${line%$'\r'}
		[[ $line =~ ^[0-9]+$ ]] && n=$line
	done
	# The body has no line end: read returns it with a failure.
	[[ ${line:-} =~ ^[0-9]+$ ]] && n=$line
	exec {fd}>&-
	[[ -n $n ]] || return 1
	echo "$n"
}

start_server() {
	local name=$1 port=${PORT[$1]}
	port_in_use "$port" && die "127.0.0.1:$port (for $name) is in use: stop what holds it or set BASE_PORT"
	case $name in
	fastserve)
		launch "$name" env GOMAXPROCS=1 XDG_CACHE_HOME="$T/cache" "$BIN/fastserve" serve \
			--addr "127.0.0.1:$port" --cert "$CERT" --key "$KEY" --proxy "http://127.0.0.1:$UPSTREAM_PORT" \
			--admin "127.0.0.1:$ADMIN_PORT"
		;;
	nginx) launch "$name" "$NGINX" -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" ;;
	haproxy) launch "$name" "$HAPROXY" -db -f "$T/haproxy.cfg" ;;
	caddy)
		launch "$name" env GOMAXPROCS=1 HOME="$T/caddy" XDG_DATA_HOME="$T/caddy/data" XDG_CONFIG_HOME="$T/caddy/config" \
			"$CADDY" run --config "$T/caddy/Caddyfile" --adapter caddyfile
		;;
	esac
	local body deadline=$((SECONDS + 15))
	for body in "${BODY_LIST[@]}"; do
		until probe "$name" "$body" >"$T/$name.probe" 2>&1; do
			if ! kill -0 "${PID[$name]}" 2>/dev/null; then
				tail -n 20 "$T/$name.log" "$T/$name.probe" >&2 || true
				die "$name exited at start (log above)"
			fi
			((SECONDS < deadline)) || die "$name does not answer on 127.0.0.1:$port after 15 s (see $T/$name.log)"
			sleep 0.2
		done
		if ! grep -q "^status: 200 OK" "$T/$name.probe" || ! grep -q "^body: ${BODY_BYTES[$body]} bytes: " "$T/$name.probe"; then
			die "$name does not pass the upstream's ${BODY_BYTES[$body]}-byte answer to ${BODY_PATH[$body]} on: $(cat "$T/$name.probe")"
		fi
		cp "$T/$name.probe" "$T/$name.probe.$body"
	done
	if [[ $name == nginx ]]; then
		nginx_one_worker
	fi
}

# probe NAME BODY does one GET on one TLS 1.3 connection and prints the
# answer.
probe() {
	timeout -k 2 10 "$BIN/idleconns" -addr "127.0.0.1:${PORT[$1]}" -n 1 -path "${BODY_PATH[$2]}" -show -timeout 3s </dev/null
}

# --- runs -------------------------------------------------------------------

# one_run ROUND BODY CONNS SERVER appends the run to runs.jsonl and prints
# its line.
one_run() {
	local round=$1 body=$2 c=$3 name=$4 url out figures t0 t1 u0 u1 up0 up1 a0 a1 requests rps errors rss sampler
	local -a pids
	url="https://127.0.0.1:${PORT[$name]}${BODY_PATH[$body]}"
	out="$T/wrk-r$round-$body-c$c-$name.txt"
	if ((WARMUP > 0)); then
		wrk_run "$c" "$WARMUP" "$url" >"$out.warmup" 2>&1 || die "wrk warm-up failed for $name: $(cat "$out.warmup")"
	fi
	mapfile -t pids < <(server_pids "$name")
	a0=$(upstream_accepted) || die "cannot read the upstream's connection count"
	read -r up0 _ < <(cpu_ticks "${PID[upstream]}")
	read -r t0 u0 < <(cpu_ticks "${pids[@]}")
	(sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')" && rss_kib "${pids[@]}" >"$out.rss") &
	sampler=$!
	wrk_run "$c" "$DURATION" "$url" >"$out" 2>&1 || die "wrk failed for $name: $(cat "$out")"
	read -r t1 u1 < <(cpu_ticks "${pids[@]}")
	read -r up1 _ < <(cpu_ticks "${PID[upstream]}")
	a1=$(upstream_accepted) || die "cannot read the upstream's connection count"
	wait "$sampler" || true
	rss=$(cat "$out.rss" 2>/dev/null || echo 0)
	figures=$(wrk_figures "$out") || exit 1
	read -r requests rps errors <<<"$figures"
	# a1 - a0 counts the first look itself.
	printf '{"round":%d,"conns":%d,"server":"%s","seconds":%d,"requests":%d,"rps":%s,"errors":%d,"cpu_ticks":%d,"user_ticks":%d,"clk_tck":%d,"rss_kib":%d,"body":"%s","upstream_ticks":%d,"upstream_conns":%d}\n' \
		"$round" "$c" "$name" "$DURATION" "$requests" "$rps" "$errors" $((t1 - t0)) $((u1 - u0)) "$HZ" "$rss" \
		"$body" $((up1 - up0)) $((a1 - a0 - 1)) >>"$T/runs.jsonl"
	"$BIN/report" runs -last "$T/runs.jsonl" >&2
}

# --- report -----------------------------------------------------------------

version_of() {
	case $1 in
	fastserve) "$BIN/fastserve" version ;;
	nginx) "$NGINX" -v 2>&1 | sed 's/^nginx version: //' ;;
	haproxy) "$HAPROXY" -v 2>&1 | sed -n 1p ;;
	caddy) echo "Caddy $("$CADDY" version 2>&1 | sed -n 1p)" ;;
	esac
}

report() {
	local kernel cpu_model distro go_v ssl_v="" wrk_v name versions="" fastserve_env
	kernel=$(uname -r)
	cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	# shellcheck source=/dev/null
	distro=$(. /etc/os-release && echo "$PRETTY_NAME")
	go_v=$("$GO" env GOVERSION)
	if find_nginx; then
		ssl_v=$("$NGINX" -V 2>&1 | grep -m1 -o 'built with OpenSSL [^ ]*' || true)
	fi
	wrk_v=$(wrk -v 2>&1 | head -n 1 || true)
	for name in "${SERVER_LIST[@]}"; do
		versions+="$(version_of "$name"); "
	done
	fastserve_env=$(env | grep '^FASTSERVE_' | sort | paste -sd ' ' || true)
	cat <<EOF
# fastserve and its peers as a TLS-terminating reverse proxy

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), run took $((SECONDS / 60)) min $((SECONDS % 60)) s
- command: \`$ORIG_CMD\`, in effect \`ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS BODIES=$BODIES SERVERS=$SERVERS UPSTREAM_KEEPALIVE=$UPSTREAM_KEEPALIVE TLS13_ORDER=$TLS13_ORDER\`
- machine: $(nproc) CPUs, $cpu_model, Linux $kernel, $distro; load average before the run: $LOAD_BEFORE
- software: ${versions}$go_v (fastserve, upstream); ${ssl_v:+nginx $ssl_v; }${wrk_v%% Copyright*}
- method: clients speak TLS 1.3 to the proxy (ECDSA P-256 certificate from \`fastserve cert\`, the same for all), HTTP/1.1
  keep-alive; the proxy speaks plain HTTP/1.1 keep-alive to the upstream (bench/peers/upstream, fasthttp, GOMAXPROCS=1),
  which answers GET ${BODY_PATH[13B]} with "Hello, World!" (13B), GET ${BODY_PATH[4KiB]} with 4,096 bytes of JSON (4KiB), ${BODY_PATH[64KiB]} with 65,536 (64KiB);
  the proxy on CPU $SERVER_CPU (\`taskset\`, one worker or GOMAXPROCS=1), \`wrk -t1\` and the upstream on CPU $CLIENT_CPU;
  proxies alternated within each round, ${WARMUP} s of warm-up before each ${DURATION} s run; proxy CPU = utime+stime of the
  whole process from /proc/PID/stat (nginx: master + its one worker), upstream CPU likewise; "upstream conns opened" =
  connections the upstream accepted during the run (fastserve's health check opens one every 5 s); open-file limit
  $NOFILE for every process$NOFILE_NOTE.
- proxies: fastserve \`serve --proxy http://127.0.0.1:PORT --admin 127.0.0.1:PORT\`${fastserve_env:+ with $fastserve_env} (its
  defaults: --proxy-max-conns 512, request buffering, health checks every 5 s, X-Forwarded-For/-Proto/-Host and
  Forwarded added, keep-alive 60s/10s/5, timeouts, limits, counters, idle parking, admin listener on); nginx 1 worker,
  \`upstream { keepalive $UPSTREAM_KEEPALIVE; }\`, \`proxy_http_version 1.1\`, \`proxy_set_header Connection ""\`, Host,
  X-Forwarded-For and X-Forwarded-Proto set, \`keepalive_requests 1000000\` and \`keepalive_timeout 620s\` to clients,
  \`access_log off\`, \`so_keepalive=60s:10s:5\`; HAProxy \`nbthread 1\`, \`mode http\`, \`http-reuse always\`,
  \`option forwardfor\`, X-Forwarded-Proto set; Caddy \`reverse_proxy\` with its default transport and headers
  (X-Forwarded-For/-Proto/-Host), \`admin off\`, HTTP/3 off, GOMAXPROCS=1; TLS 1.3 suite order of nginx and HAProxy:
  $TLS13_ORDER (see the cipher each negotiated with OpenSSL below).
EOF
	if ((${#SKIPPED[@]} > 0)); then
		local s
		for s in "${SKIPPED[@]}"; do
			echo "- left out: $s"
		done
	fi
	cat <<EOF

## Throughput, median of $ROUNDS round(s) [min-max]

EOF
	"$BIN/report" proxy "$T/runs.jsonl"
	cat <<EOF

## Every run

EOF
	"$BIN/report" runs "$T/runs.jsonl"
	echo
	echo "## What each proxy answers (to the Go TLS 1.3 probe, ${BODY_LIST[0]})"
	for name in "${SERVER_LIST[@]}"; do
		echo
		echo "$name:"
		echo
		echo '```'
		grep -v '^nofile\|^ready\|^body:' "$T/$name.probe.first"
		echo '```'
	done
}

# --- main -------------------------------------------------------------------

main() {
	check_options
	[[ $(id -u) == 0 ]] || die "run as root (sudo bash $0): it installs packages with apt-get and raises the open-file limit"
	(($(nproc) >= 2)) || die "needs 2 CPUs (proxy on CPU $SERVER_CPU, wrk and the upstream on CPU $CLIENT_CPU), this machine has $(nproc)"
	LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	T=$(mktemp -d /tmp/fastserve-proxy.XXXXXX)
	chmod 755 "$T" # nginx's worker runs as nobody
	BIN=$T/bin
	CERT=$T/cert.pem
	KEY=$T/key.pem
	HZ=$(getconf CLK_TCK)
	pick_file_limit
	declare -gA PORT=([fastserve]=$BASE_PORT [nginx]=$((BASE_PORT + 1)) [haproxy]=$((BASE_PORT + 2)) [caddy]=$((BASE_PORT + 3)))
	UPSTREAM_PORT=$((BASE_PORT + 10))
	ADMIN_PORT=$((BASE_PORT + 20))

	install_deps
	((${#SERVER_LIST[@]} > 0)) || die "no proxy left to run"
	find_go
	build
	mkdir -p "$T/cache"
	"$BIN/fastserve" cert --host 127.0.0.1,localhost --cert-file "$CERT" --key-file "$KEY" 2>>"$T/cert.log"
	if wants nginx; then nginx_conf; fi
	if wants haproxy; then haproxy_conf; fi
	if wants caddy; then caddy_conf; fi

	local range
	range=$(tr -s '\t ' - </proc/sys/net/ipv4/ip_local_port_range)
	log "ephemeral ports $range; $((${#BODY_LIST[@]} * ${#CONN_LIST[@]} * ${#SERVER_LIST[@]} * ROUNDS)) runs of ${DURATION} s (+${WARMUP} s warm-up)"

	start_upstream
	local name round body c
	for name in "${SERVER_LIST[@]}"; do
		start_server "$name"
		cp "$T/$name.probe.${BODY_LIST[0]}" "$T/$name.probe.first"
		openssl_tls "${PORT[$name]}" >>"$T/$name.probe.first"
	done
	: >"$T/runs.jsonl"
	for round in $(seq "$ROUNDS"); do
		for body in "${BODY_LIST[@]}"; do
			for c in "${CONN_LIST[@]}"; do
				for name in "${SERVER_LIST[@]}"; do
					one_run "$round" "$body" "$c" "$name"
				done
			done
		done
	done
	for name in "${SERVER_LIST[@]}"; do
		stop_server "$name"
	done
	stop_server upstream

	report | tee "$OUT"
	log "wrote $OUT"
}

main
