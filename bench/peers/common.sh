# shellcheck shell=bash
# What the scripts in bench/peers share: their options, logging, the
# processes they start (pinned, counted, cleaned up on exit, signals
# included), reading a process's CPU time, memory and descriptors from /proc,
# wrk bounded in time, and installing Debian packages. Sourced, not run.
#
# The sourcing script sets SCRIPT (its name, for messages) before sourcing,
# and then, before it starts anything: T (its temp directory), NOFILE (the
# open-file limit of what it starts), SERVER_CPU and CLIENT_CPU, KEEP_TMP,
# and TMP_HOLDS if its temp directory holds more than logs, configs and wrk
# outputs (for the message that keeps it).

# The script's own standard error: a trap may run inside a function whose
# stderr is redirected to a file.
exec {STDERR}>&2
log() { printf '%s %s\n' "$(date +%T)" "$*" >&"$STDERR"; }
die() {
	printf '%s: %s\n' "$SCRIPT" "$*" >&"$STDERR"
	exit 1
}

# --- options ----------------------------------------------------------------

# usage prints the script's header comment.
usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# parse_options LETTER:VARIABLE... -- ARGS...: sets VARIABLE to the value of
# each -LETTER in ARGS; -h prints the usage; anything else is an error.
parse_options() {
	local -A var=()
	local spec=h opt OPTARG OPTIND=1
	while [[ $1 != -- ]]; do
		var[${1%%:*}]=${1#*:}
		spec+=${1%%:*}:
		shift
	done
	shift
	while getopts "$spec" opt; do
		case $opt in
		h)
			usage
			exit 0
			;;
		'?')
			usage >&2
			exit 2
			;;
		*) printf -v "${var[$opt]}" '%s' "$OPTARG" ;;
		esac
	done
	shift $((OPTIND - 1))
	if (($# > 0)); then
		echo "$SCRIPT: unexpected argument: $1 (see -h)" >&2
		exit 2
	fi
}

# --- processes --------------------------------------------------------------

declare -A PID=()     # server name -> pid
declare -A STARTED=() # pid -> what, for the cleanup
T=
POLICY_RC=

# cleanup stops every process the script started (TERM, then KILL after 2 s),
# removes the policy-rc.d it wrote, and the temp directory unless KEEP_TMP=1
# or the script failed.
cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${!STARTED[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${!STARTED[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [[ -n $POLICY_RC ]]; then
		rm -f "$POLICY_RC"
	fi
	if [[ -n $T && -d $T ]]; then
		if [[ ${KEEP_TMP:-0} == 1 || $rc != 0 ]]; then
			log "kept $T (${TMP_HOLDS:-logs, configs, wrk outputs})"
		else
			rm -rf "$T"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# children prints the pids whose parent is $1.
children() {
	local f line rest ppid
	local -a fields
	for f in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null <"$f" || continue # it may have exited
		rest=${line##*) }
		read -ra fields <<<"$rest"
		ppid=${fields[1]}
		if [[ $ppid == "$1" ]]; then
			f=${f#/proc/}
			echo "${f%/stat}"
		fi
	done
}

# cpu_ticks prints utime+stime and utime alone (clock ticks) summed over the
# pids; each is a whole process, so all its threads count.
cpu_ticks() {
	local p line rest total=0 user=0
	local -a f
	for p in "$@"; do
		read -r line <"/proc/$p/stat" || die "process $p is gone"
		rest=${line##*) }
		read -ra f <<<"$rest"
		total=$((total + f[11] + f[12]))
		user=$((user + f[11]))
	done
	echo "$total $user"
}

# rss_kib prints VmRSS (KiB) summed over the pids.
rss_kib() {
	local p total=0 kib
	for p in "$@"; do
		kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status") || die "process $p is gone"
		total=$((total + kib))
	done
	echo "$total"
}

# fd_count prints the open descriptors summed over the pids.
fd_count() {
	local p total=0
	local -a fds
	for p in "$@"; do
		fds=("/proc/$p/fd/"*)
		total=$((total + ${#fds[@]}))
	done
	echo "$total"
}

# server_pids NAME prints the processes whose CPU time and memory count as
# the server's: the process, and for nginx its master and worker(s).
server_pids() {
	local p=${PID[$1]}
	echo "$p"
	if [[ $1 == nginx ]]; then
		children "$p"
	fi
}

port_in_use() {
	(: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# launch_on CPU NAME CMD...: starts CMD pinned to CPU with the raised file
# limit, its output to $T/NAME.log, and records it for the cleanup.
launch_on() {
	local cpu=$1 name=$2
	shift 2
	(ulimit -n "$NOFILE" && exec taskset -c "$cpu" "$@") >>"$T/$name.log" 2>&1 &
	PID[$name]=$!
	STARTED[$!]=$name
}

# launch NAME CMD...: launch_on the server CPU.
launch() {
	launch_on "$SERVER_CPU" "$@"
}

# stop_server NAME: TERM, up to 10 s, then KILL.
stop_server() {
	local name=$1 p=${PID[$1]}
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.2
	done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	unset "STARTED[$p]"
	unset "PID[$name]"
}

# wrk_run CONNS SECONDS URL: wrk on the client CPU, bounded in time.
wrk_run() {
	(ulimit -n "$NOFILE" && exec timeout --foreground -k 5 $(($2 + 30)) \
		taskset -c "$CLIENT_CPU" wrk -t1 -c"$1" -d"$2s" --timeout 10s "$3")
}

# wrk_figures FILE prints wrk's request count, req/s, and its socket errors
# and non-2xx or 3xx responses summed, from its output in FILE.
wrk_figures() {
	local requests rps errors
	requests=$(awk '/ requests in / { print $1; exit }' "$1")
	rps=$(awk '/^Requests\/sec:/ { print $2; exit }' "$1")
	errors=$(awk '/Socket errors:/ { gsub(/[^0-9 ]/, " "); n = split($0, a, " "); for (i = 1; i <= n; i++) s += a[i] }
		/Non-2xx or 3xx responses:/ { s += $NF } END { print s + 0 }' "$1")
	[[ -n $requests && -n $rps ]] || die "cannot read wrk's output: $(cat "$1")"
	echo "$requests $rps $errors"
}

# openssl_tls PORT prints what an OpenSSL client, as wrk is, negotiates with
# the server on PORT (a Go client may get another cipher suite: the server
# may follow the client's order).
openssl_tls() {
	command -v openssl >/dev/null 2>&1 || return 0
	local got
	got=$(timeout -k 2 5 openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null |
		grep -m1 '^New, ' || true)
	echo "tls with an OpenSSL client (as wrk): ${got:-unknown}"
}

# json_string prints $1 as a JSON string.
json_string() {
	local v=${1//\\/\\\\}
	v=${v//\"/\\\"}
	printf '"%s"' "${v//$'\t'/ }"
}

# --- set-up -----------------------------------------------------------------

# apt_install PKG...: installs Debian packages without starting their
# services (a policy-rc.d that refuses, for the time of the install): nginx's
# and Caddy's would take ports 80 and 443. nginx is installed as nginx-light
# where Debian has it (the smallest nginx with TLS and proxy_pass).
apt_install() {
	local -a pkgs=("$@")
	((${#pkgs[@]} == 0)) && return
	command -v apt-get >/dev/null 2>&1 ||
		die "no apt-get: this script installs ${pkgs[*]} from Debian; on another system install them and re-run"
	local i
	for i in "${!pkgs[@]}"; do
		if [[ ${pkgs[i]} == nginx ]] && apt-cache show nginx-light >/dev/null 2>&1; then
			pkgs[i]=nginx-light
		fi
	done
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		POLICY_RC=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
		chmod 755 "$POLICY_RC"
	fi
	log "installing ${pkgs[*]} (apt-get update first)"
	apt-get update -qq || die "apt-get update failed"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >"$T/apt.log" 2>&1; then
		if [[ " ${pkgs[*]} " == *" nginx-light "* ]]; then
			pkgs=("${pkgs[@]/nginx-light/nginx}")
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >>"$T/apt.log" 2>&1 ||
				die "apt-get install ${pkgs[*]} failed: $(tail -n 5 "$T/apt.log")"
		else
			die "apt-get install ${pkgs[*]} failed: $(tail -n 5 "$T/apt.log")"
		fi
	fi
	if [[ -n $POLICY_RC ]]; then
		rm -f "$POLICY_RC"
		POLICY_RC=
	fi
}

# nginx_conf_head CONNS prints the top of $T/nginx/nginx.conf: nginx in the
# foreground, one worker (as nobody) of CONNS connections and the open-file
# limit, its pid and error log under $T/nginx. nginx_one_worker checks, once
# nginx is started, that it has the one worker.
nginx_conf_head() {
	cat <<EOF
# Written by bench/peers/$SCRIPT; run as nginx -p $T/nginx/ -c $T/nginx/nginx.conf
daemon off;
user nobody nogroup;
worker_processes 1;
worker_rlimit_nofile $NOFILE;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events {
    worker_connections $1;
}
EOF
}

nginx_one_worker() {
	local workers
	workers=$(children "${PID[nginx]}" | wc -l)
	((workers == 1)) || die "nginx has $workers worker processes, want 1"
}

# nginx_tls13_suites ORDER prints the server-block lines that make nginx
# prefer AES-128-GCM with ORDER go, as Go servers pick for an OpenSSL client
# (with OpenSSL's order, the default, wrk gets AES-256-GCM from nginx), and
# nothing with ORDER openssl. nginx_temp_paths DIR prints a temp path under
# DIR for each module the binary has, so that nothing under /var/lib/nginx
# is used.
nginx_tls13_suites() {
	if [[ $1 == go ]]; then
		echo "        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;"
		echo "        ssl_prefer_server_ciphers on;"
	fi
}

nginx_temp_paths() {
	local mod
	for mod in proxy fastcgi uwsgi scgi; do
		if ! "$NGINX" -V 2>&1 | grep -q -- "--without-http_${mod}_module"; then
			echo "    ${mod}_temp_path $1/$mod;"
		fi
	done
}

find_nginx() {
	NGINX=$(command -v nginx 2>/dev/null || true)
	[[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
	[[ -n $NGINX ]]
}

# find_go sets GO, and GOTOOLCHAIN to go.mod's toolchain line unless it is
# set (as .ci/run does: a go.env that says GOTOOLCHAIN=local would build with
# whatever Go is installed).
find_go() {
	GO=$(command -v go 2>/dev/null || true)
	[[ -z $GO && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
	[[ -n $GO ]] || die "needs Go (the version in go.mod) in PATH or /usr/local/go/bin; Debian's golang is too old"
	if [[ -z ${GOTOOLCHAIN:-} ]]; then
		GOTOOLCHAIN=$(sed -n 's/^toolchain //p' "$REPO/go.mod")
		export GOTOOLCHAIN
	fi
}
