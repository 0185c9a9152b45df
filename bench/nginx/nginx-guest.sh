#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nginx-guest.sh: the nginx benchmark's guest side (see bench/nginx/run-nginx).
# Runs as root inside ONE bench VM boot, or on a host, where it only touches
# the namespaces it creates (and a global sysctl it restores).
#
#   bench/nginx/nginx-guest.sh --server-cpus LIST --client-cpus LIST
#       [--configs A,B,..] [--reps R] [--duration SECS] [--warmup SECS]
#       [--conns N] [--workers W] [--port P] [--topology veth|lo] [--rfs N]
#       [--wrk-timeout SECS] [--settle SECS] [--nginx PATH] [--wrk PATH]
#       [--out DIR]
#
# For each repetition, each configuration in turn (A B C A B C ...): a fresh
# server and client namespace (bench-once.sh's topology, bench/guest/lib.sh),
# the configuration's net.ipv4.tcp_percore_listen in the server namespace,
# Debian's unmodified nginx there (W workers, worker_cpu_affinity auto over
# the server CPUs, a 64-byte static file, access_log off), a warm-up, then
# wrk -H 'Connection: close' (one connection per request) from the client
# namespace, pinned to the client CPUs, for --duration seconds.
#
#   nginx-shared      sysctl 0, "listen PORT;"            one shared listener
#   nginx-percore     sysctl 1, "listen PORT;"            the same, per-core listen
#   nginx-reuseport   sysctl 0, "listen PORT reuseport;"  a listener per worker
#
# Results: DIR/nginx.json ({"config": ..., "runs": [...]}; default $MP_OUT,
# else .) and DIR/runs/rep<R>-<config>/ (nginx.conf, error.log, wrk.txt).
# Exit status 0 when every run is clean (wrk ran without errors, nginx logged
# nothing at level error or worse and exited 0, per-core listen engaged
# exactly where the sysctl says), 1 otherwise, 2 on bad usage.
set -uo pipefail

here=$(dirname "$(realpath "$0")")
bench=$(dirname "$here")

configs='nginx-shared,nginx-percore,nginx-reuseport'
reps=3
duration=10
warmup=2
conns=
workers=
port=8080
topology=veth
rfs=0
wrk_timeout=10
settle=3
nginx=/usr/sbin/nginx
wrk=/usr/bin/wrk
out=${MP_OUT:-.}
server_cpus=
client_cpus=

usage() {
	sed -n '8,12p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--configs) configs=$2; shift ;;
	--reps) reps=$2; shift ;;
	--duration) duration=$2; shift ;;
	--warmup) warmup=$2; shift ;;
	--conns) conns=$2; shift ;;
	--workers) workers=$2; shift ;;
	--port) port=$2; shift ;;
	--topology) topology=$2; shift ;;
	--rfs) rfs=$2; shift ;;
	--wrk-timeout) wrk_timeout=$2; shift ;;
	--settle) settle=$2; shift ;;
	--nginx) nginx=$2; shift ;;
	--wrk) wrk=$2; shift ;;
	--out) out=$2; shift ;;
	--server-cpus) server_cpus=$2; shift ;;
	--client-cpus) client_cpus=$2; shift ;;
	-h|--help) usage ;;
	*) echo "nginx-guest: unknown argument '$1'" >&2; usage ;;
	esac
	shift
done
[ -n "$server_cpus" ] && [ -n "$client_cpus" ] || usage
case $topology in veth|lo) ;; *) echo "nginx-guest: --topology veth|lo" >&2; exit 2 ;; esac
for v in reps duration warmup port rfs wrk_timeout settle ${conns:+conns} ${workers:+workers}; do
	[[ ${!v} =~ ^[0-9]+$ ]] || { echo "nginx-guest: --${v/_/-} takes a number" >&2; exit 2; }
done
[ "$reps" -ge 1 ] && [ "$duration" -ge 1 ] || { echo "nginx-guest: --reps and --duration must be >= 1" >&2; exit 2; }
mkdir -p "$out" || exit 2
out=$(realpath "$out")

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C

prog='nginx-guest'
# shellcheck source=bench/guest/lib.sh
. "$bench/guest/lib.sh" || exit 2

# config name -> "SYSCTL LISTEN-SUFFIX"
declare -A cfg_sysctl=([nginx-shared]=0 [nginx-percore]=1 [nginx-reuseport]=0)
declare -A cfg_listen=([nginx-shared]='' [nginx-percore]='' [nginx-reuseport]=' reuseport')
IFS=, read -ra cfgs <<<"$configs"
[ ${#cfgs[@]} -gt 0 ] || usage
for c in "${cfgs[@]}"; do
	[ -n "${cfg_sysctl[$c]+x}" ] || { echo "nginx-guest: unknown configuration '$c' (known: ${!cfg_sysctl[*]})" >&2; exit 2; }
done

list=$(cpulist_expand "$server_cpus") || { echo "nginx-guest: bad --server-cpus '$server_cpus'" >&2; exit 2; }
mapfile -t scpus <<<"$list"
list=$(cpulist_expand "$client_cpus") || { echo "nginx-guest: bad --client-cpus '$client_cpus'" >&2; exit 2; }
mapfile -t ccpus <<<"$list"
ncpus=$(nproc --all)
for c in "${scpus[@]}" "${ccpus[@]}"; do
	[ "$c" -lt "$ncpus" ] || { echo "nginx-guest: CPU $c does not exist ($ncpus CPUs)" >&2; exit 2; }
done
for c in "${scpus[@]}"; do
	for d in "${ccpus[@]}"; do
		[ "$c" != "$d" ] || { echo "nginx-guest: CPU $c is both a server and a client CPU" >&2; exit 2; }
	done
done
nsrv=${#scpus[@]}
ncli=${#ccpus[@]}
[ -n "$workers" ] || workers=$nsrv
[ -n "$conns" ] || conns=$((ncli * 8))
[ "$workers" -ge 1 ] || { echo "nginx-guest: --workers must be >= 1" >&2; exit 2; }
[ "$conns" -ge "$ncli" ] || { echo "nginx-guest: --conns must be >= the client CPUs (wrk threads)" >&2; exit 2; }
[ -x "$nginx" ] || { echo "nginx-guest: $nginx missing (make deps: Debian's nginx-light)" >&2; exit 2; }
[ -x "$wrk" ] || { echo "nginx-guest: $wrk missing (make deps: Debian's wrk)" >&2; exit 2; }

# worker_cpu_affinity auto binds worker i to the i-th CPU of its mask; with
# no mask, to CPU i of the machine, whatever the master's affinity: give it
# the server CPUs as a bit string (CPU 0 rightmost).
affinity_mask() {
	local c max=0 s='' i
	declare -A on=()
	for c in "$@"; do on[$c]=1; [ "$c" -gt "$max" ] && max=$c; done
	for ((i = max; i >= 0; i--)); do s+=${on[$i]:-0}; done
	echo "$s"
}
aff_mask=$(affinity_mask "${scpus[@]}")

# The body mp-load checks (bench/servers/http_body.h): 64 bytes.
body='0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.'

ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null
nofile=$(ulimit -n)
wconns=16384
[ "$nofile" != unlimited ] && [ $((nofile / 2)) -lt $wconns ] && wconns=$((nofile / 2))

tmp=$(mktemp -d /tmp/nginx-guest.XXXXXX) || exit 1
chmod 755 "$tmp"	# the workers run as nobody and read the document root
nginx_pid=
srv_ns='' cli_ns=''
cleanup() {
	if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
		kill -KILL "$nginx_pid" 2>/dev/null
		wait "$nginx_pid" 2>/dev/null
	fi
	[ -n "$srv_ns" ] && teardown_topology
	rm -rf "$tmp"
	restore_globals
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wrk's summary as one JSON line (the Lua done() hook).
cat > "$tmp/report.lua" <<'EOF'
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, '
		.. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, '
		.. '"status_errors": %d, "timeouts": %d, '
		.. '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
		summary.requests, summary.duration, summary.bytes,
		e.connect, e.read, e.write, e.status, e.timeout,
		latency.mean, latency:percentile(50), latency:percentile(90),
		latency:percentile(99), latency.max))
end
EOF

write_conf() {	# PREFIX LISTEN-SUFFIX
	local p=$1 suffix=$2
	mkdir -p "$p/html" "$p/temp"
	printf '%s\n' "$body" > "$p/html/index.html"
	cat > "$p/nginx.conf" <<EOF
# generated by bench/nginx/nginx-guest.sh
daemon off;
master_process on;
worker_processes $workers;
worker_cpu_affinity auto $aff_mask;
pid $p/nginx.pid;
lock_file $p/nginx.lock;
error_log $p/error.log notice;

events {
    worker_connections $wconns;
}

http {
    access_log off;
    sendfile on;
    default_type text/plain;
    client_body_temp_path $p/temp/client_body;
    proxy_temp_path $p/temp/proxy;
    fastcgi_temp_path $p/temp/fastcgi;
    uwsgi_temp_path $p/temp/uwsgi;
    scgi_temp_path $p/temp/scgi;

    server {
        listen $srv_addr:$port$suffix;
        root $p/html;
    }
}
EOF
	chmod -R a+rX "$p"
}

# "LA ST OV RC" "LA ST OV RC" -> the difference
percore_delta() {
	local a b
	read -ra a <<<"$1"
	read -ra b <<<"$2"
	[ ${#a[@]} = 4 ] && [ ${#b[@]} = 4 ] || return 0
	echo $((b[0] - a[0])) $((b[1] - a[1])) $((b[2] - a[2])) $((b[3] - a[3]))
}

# A GET over bash's /dev/tcp from the client namespace: does nginx serve
# the file?  Prints the status line and the body.
probe() {
	# shellcheck disable=SC2016  # expanded by the inner bash
	nsx "$cli_ns" bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
		printf "GET /index.html HTTP/1.0\r\nHost: bench\r\n\r\n" >&3
		sed -n "1p;\$p" <&3' probe "$srv_addr" "$port" 2>/dev/null
}

# Wait for the master and its W workers and a correct response.
wait_ready() {	# PREFIX
	local i n resp
	for ((i = 0; i < 300; i++)); do
		kill -0 "$nginx_pid" 2>/dev/null || { fail "nginx exited at start: $(tail -n 3 "$1/error.log" 2>/dev/null)"; return 1; }
		n=$(pgrep -c -P "$nginx_pid" 2>/dev/null) || n=0
		if [ "$n" -ge "$workers" ]; then
			resp=$(probe)
			if [[ $resp == *" 200 "*$'\n'"$body" ]]; then
				return 0
			fi
		fi
		sleep 0.1
	done
	fail "nginx not ready within 30s ($n workers, response: ${resp:-none})"
	return 1
}

# wrk's output -> sets wjson (or null), wrk_text_rps (or null)
parse_wrk() {	# FILE
	wjson=$(sed -n 's/^WRKJSON //p' "$1" | head -n 1)
	[ -n "$wjson" ] || wjson=null
	wrk_text_rps=$(awk '$1 == "Requests/sec:" { print $2; exit }' "$1")
	[ -n "$wrk_text_rps" ] || wrk_text_rps=null
}

json_num() {	# JSON KEY -> the number after "KEY": (first match)
	[[ $1 =~ \"$2\":\ *(-?[0-9.]+) ]] && echo "${BASH_REMATCH[1]}"
}

: > "$out/runs.jsonl"
nfailed=0
t0=$(date +%s)

run_one() {	# REP CONFIG INDEX
	local rep=$1 cfg=$2 idx=$3
	local want=${cfg_sysctl[$cfg]} suffix=${cfg_listen[$cfg]}
	local tag=$$r$idx rdir=$out/runs/rep$rep-$cfg p=$tmp/run$idx
	local mode=null wrk_rc=-1 nginx_rc=-1 wjson=null wrk_text_rps=null rps=null
	local busy={} sb_avg=null sb_min=null cb_avg=null
	local pc0='' pc1='' pcd='' wcpus='' nwarn=0 nerr=0 e total=0 i w status pk=()
	errors=()
	mkdir -p "$rdir"
	if [ "$topology" = veth ]; then
		srv_ns=mpngs$tag cli_ns=mpngc$tag srv_dev=mpns$tag cli_dev=mpnc$tag srv_addr=10.77.0.1
	else
		srv_ns=mpngl$tag cli_ns=$srv_ns srv_addr=127.0.0.1
	fi
	log "rep $rep $cfg: $PERCORE_SYSCTL=$want, listen $port$suffix, $workers workers on CPUs $server_cpus, wrk on $client_cpus"

	if ! setup_topology; then
		fail "topology $topology setup failed"
	elif [ "$want" != 0 ] && ! nsx "$srv_ns" sysctl -q -w "$PERCORE_SYSCTL=$want"; then
		fail "sysctl -w $PERCORE_SYSCTL=$want failed (a kernel without per-core listen?)"
	else
		mode=$(percore_value "$srv_ns")
		write_conf "$p" "$suffix"
		cp "$p/nginx.conf" "$rdir/nginx.conf"
		if ! nsx "$srv_ns" "$nginx" -t -q -p "$p/" -c "$p/nginx.conf" -e stderr > "$rdir/nginx-t.out" 2>&1; then
			fail "nginx -t failed: $(tail -n 3 "$rdir/nginx-t.out")"
		else
			# Not through nsx (a function: $! would be a subshell);
			# ip netns exec and taskset exec, so $! is the master.
			ip netns exec "$srv_ns" taskset -c "$server_cpus" "$nginx" -p "$p/" -c "$p/nginx.conf" \
				-e stderr > "$rdir/nginx.out" 2>&1 &
			nginx_pid=$!
			if wait_ready "$p"; then
				for w in $(pgrep -P "$nginx_pid"); do
					wcpus+="${wcpus:+ }$(awk '/^Cpus_allowed_list/ { print $2 }' "/proc/$w/status" 2>/dev/null)"
				done
				# Warm-up: not measured.
				if [ "$warmup" -gt 0 ]; then
					nsx "$cli_ns" taskset -c "$client_cpus" "$wrk" -t "$ncli" -c "$conns" \
						-d "${warmup}s" --timeout "${wrk_timeout}s" -H 'Connection: close' \
						"http://$srv_addr:$port/index.html" > "$rdir/wrk-warmup.txt" 2>&1 ||
						fail "wrk warm-up exited $?: $(tail -n 3 "$rdir/wrk-warmup.txt")"
				fi
				pc0=$(percore_all "$srv_ns") || pc0=
				cpu_snapshot > "$tmp/snap0"
				nsx "$cli_ns" taskset -c "$client_cpus" "$wrk" -t "$ncli" -c "$conns" \
					-d "${duration}s" --timeout "${wrk_timeout}s" --latency \
					-H 'Connection: close' -s "$tmp/report.lua" \
					"http://$srv_addr:$port/index.html" > "$rdir/wrk.txt" 2>&1
				wrk_rc=$?
				cpu_snapshot > "$tmp/snap1"
				pc1=$(percore_all "$srv_ns") || pc1=
				busy=$(busy_json "$tmp/snap0" "$tmp/snap1")
				read -r sb_avg sb_min <<<"$(busy_of "$tmp/snap0" "$tmp/snap1" "${scpus[@]}")"
				read -r cb_avg _ <<<"$(busy_of "$tmp/snap0" "$tmp/snap1" "${ccpus[@]}")"
				parse_wrk "$rdir/wrk.txt"
				[ "$wrk_rc" = 0 ] || fail "wrk exited $wrk_rc: $(tail -n 3 "$rdir/wrk.txt")"
				if [ "$wjson" = null ]; then
					fail "wrk printed no summary: $(tail -n 3 "$rdir/wrk.txt")"
				else
					local req dus
					req=$(json_num "$wjson" requests) dus=$(json_num "$wjson" duration_us)
					rps=$(awk -v r="$req" -v d="$dus" 'BEGIN { if (d > 0) printf "%.1f", r * 1e6 / d; else print "null" }')
					for e in connect_errors read_errors write_errors status_errors timeouts; do
						total=$((total + $(json_num "$wjson" "$e" || echo 0)))
					done
					[ "$total" = 0 ] || fail "wrk counted $total errors (socket errors, timeouts, non-2xx/3xx)"
					[ "${req:-0}" -gt 0 ] || fail "wrk completed no request"
				fi
				if [ -n "$pc1" ]; then
					pcd=$(percore_delta "$pc0" "$pc1")
					read -ra pk <<<"$pcd"
					if [ "$want" = 0 ] || { [ "$want" = 1 ] && [ -n "$suffix" ]; }; then
						[ $((pk[0] + pk[1] + pk[2])) = 0 ] ||
							fail "per-core listen counters moved ($pcd) with $PERCORE_SYSCTL=$want, listen$suffix"
					else
						[ $((pk[0] + pk[1])) -gt 0 ] ||
							fail "per-core listen did not engage: no local accept or steal with $PERCORE_SYSCTL=$want"
					fi
				fi
			fi
			# Stop nginx (fast shutdown).
			if kill -0 "$nginx_pid" 2>/dev/null; then
				kill -TERM "$nginx_pid"
				for ((i = 0; i < 300; i++)); do
					kill -0 "$nginx_pid" 2>/dev/null || break
					sleep 0.1
				done
				if kill -0 "$nginx_pid" 2>/dev/null; then
					fail "nginx did not exit within 30s of SIGTERM"
					kill -KILL "$nginx_pid"
				fi
			else
				fail "nginx died during the run"
			fi
			wait "$nginx_pid"
			nginx_rc=$?
			nginx_pid=
			[ "$nginx_rc" = 0 ] || fail "nginx exited with status $nginx_rc"
			cp "$p/error.log" "$rdir/error.log" 2>/dev/null
			nwarn=$(grep -c '\[warn\]' "$rdir/error.log" 2>/dev/null) || nwarn=0
			nerr=$(grep -cE '\[(error|crit|alert|emerg)\]' "$rdir/error.log" 2>/dev/null) || nerr=0
			[ "$nerr" = 0 ] || fail "nginx logged $nerr errors: $(grep -m 2 -E '\[(error|crit|alert|emerg)\]' "$rdir/error.log")"
		fi
	fi
	teardown_topology
	srv_ns='' cli_ns=''
	rm -rf "$p"

	status=ok
	[ ${#errors[@]} = 0 ] || { status=error; nfailed=$((nfailed + 1)); }
	{
		printf '{"config": %s, "rep": %d, "sysctl": %d, "percore_listen": %s, "listen": %s,' \
			"$(json_str "$cfg")" "$rep" "$want" "$mode" "$(json_str "$port$suffix")"
		printf ' "workers": %d, "worker_cpus": %s, "conns": %d, "wrk_threads": %d, "duration_s": %d,' \
			"$workers" "$(json_str "$wcpus")" "$conns" "$ncli" "$duration"
		printf ' "requests_per_s": %s, "wrk_text_rps": %s, "wrk_rc": %d, "wrk": %s, "wrk_errors": %d,' \
			"$rps" "$wrk_text_rps" "$wrk_rc" "$wjson" "$total"
		printf ' "nginx_rc": %d, "nginx_log_warn": %d, "nginx_log_errors": %d,' "$nginx_rc" "$nwarn" "$nerr"
		printf ' "cpu_busy": %s, "server_busy_avg": %s, "server_busy_min": %s, "client_busy_avg": %s,' \
			"$busy" "$sb_avg" "$sb_min" "$cb_avg"
		printf ' "percore_before": %s, "percore": %s,' "$(percore_json "$pc0")" "$(percore_json "$pcd")"
		printf ' "status": %s, "errors": [' "$(json_str $status)"
		local sep=
		for e in "${errors[@]}"; do printf '%s%s' "$sep" "$(json_str "$e")"; sep=', '; done
		printf ']}\n'
	} >> "$out/runs.jsonl"
	log "rep $rep $cfg: $status, $rps requests/s, $total wrk errors, server CPUs busy $sb_avg, percore delta ${pcd:-n/a}"
	# Namespaces are freed asynchronously (their TIME_WAIT sockets too):
	# let that finish before the next run.
	sleep "$settle"
}

idx=0
for ((rep = 1; rep <= reps; rep++)); do
	for c in "${cfgs[@]}"; do
		idx=$((idx + 1))
		run_one "$rep" "$c" "$idx"
	done
done

{
	printf '{"config": {"configs": ['
	sep=
	for c in "${cfgs[@]}"; do printf '%s%s' "$sep" "$(json_str "$c")"; sep=', '; done
	printf '], "reps": %d, "duration_s": %d, "warmup_s": %d, "conns": %d, "workers": %d,' \
		"$reps" "$duration" "$warmup" "$conns" "$workers"
	printf ' "server_cpus": %s, "client_cpus": %s, "topology": %s, "rfs": %d, "port": %d,' \
		"$(json_str "$server_cpus")" "$(json_str "$client_cpus")" "$(json_str "$topology")" "$rfs" "$port"
	printf ' "worker_connections": %d, "kernel": %s, "vcpus": %d, "nginx": %s, "wrk": %s,' \
		"$wconns" "$(json_str "$(uname -r)")" "$ncpus" \
		"$(json_str "$("$nginx" -v 2>&1 | head -n 1)")" "$(json_str "$("$wrk" -v 2>&1 | head -n 1)")"
	printf ' "wall_s": %d},\n "runs": [\n' $(($(date +%s) - t0))
	sed '$!s/$/,/' "$out/runs.jsonl"
	printf ']}\n'
} > "$out/nginx.json"
log "$((idx - nfailed)) of $idx runs clean; results in $out/nginx.json"
[ "$nfailed" = 0 ]
