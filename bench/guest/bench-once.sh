#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench-once.sh: one benchmark measurement.  Runs as root inside the bench VM
# (see bench/run-bench); also works on a host, where it only touches the
# namespaces it creates (and two global sysctls it restores).
#
#   bench/guest/bench-once.sh --design NAME --server-cpus LIST --client-cpus LIST
#       [--mode short|persistent] [--proto echo|http] [--ops N] [--conns N]
#       [--warmup N] [--size BYTES] [--topology veth|lo] [--mark] [--rfs N]
#       [--port P] [--timeout SECS] [--designs FILE] [--out DIR]
#       [--stall MS:EVERY_MS] [--stall-mode sleep|spin] [--slow-ms MS]
#
# Topology "veth": a server and a client network namespace joined by a veth
# pair (10.77.0.1/24 server, 10.77.0.2/24 client), with RPS on the receive
# queue of BOTH ends (server end: the server CPUs, client end: the client
# CPUs), so each side's receive processing runs on its own CPUs as with a NIC
# doing RSS.  (veth otherwise delivers on the sender's CPU.)  RFS is off unless
# --rfs N is given (then rps_sock_flow_entries=N and rps_flow_cnt=N on both
# ends): plain RPS hashing, like RSS without aRFS, keeps the steering
# independent of the server design being measured.
# Topology "lo": server and client on the loopback of one fresh namespace, no
# RPS (receive processing runs on the sending CPU).
#
# The server runs pinned to the server CPUs with one thread per CPU, the load
# generator (mp-load) pinned to the client CPUs with one thread per CPU.  The
# result, one JSON object, goes to DIR/result.json (default $MP_OUT, else .);
# the server's and the client's output go next to it.  Exit status 0 when the
# measurement is clean (no load errors, server healthy), 1 otherwise (the JSON
# is still written, with "status": "error" and the reasons), 2 on bad usage.
# On a kernel with per-core listen (net.ipv4.tcp_percore_listen), the
# topology pins the sysctl to 0 in its namespaces (a design's sysctl: setup
# may then set it in the server's), and the server namespace's counters
# ("all" row of /proc/net/tcp_percore_listen) are logged after the load and
# recorded as "percore" in the JSON.
# --stall MS:EVERY_MS: server thread 0 stalls MS ms every EVERY_MS ms
# (--stall-thread 0 --stall-ms MS --stall-every-ms EVERY_MS --stall-mode M;
# epoll servers only); mp-load then counts operations slower than --slow-ms
# (default MS), and the server's stall count goes into the JSON.
set -uo pipefail

here=$(dirname "$(realpath "$0")")
bench=$(dirname "$here")
root=$(dirname "$bench")

design=
mode=short
proto='echo'
ops=2000
conns=
warmup=
size=64
topology=veth
mark=0
no_aslr=0
rfs=0
port=8080
timeout=300
designs_file=$bench/designs.conf
out=${MP_OUT:-.}
server_cpus=
client_cpus=
stall=
stall_mode=sleep
slow_ms=

usage() {
	sed -n '8,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--design) design=$2; shift ;;
	--mode) mode=$2; shift ;;
	--proto) proto=$2; shift ;;
	--ops) ops=$2; shift ;;
	--conns) conns=$2; shift ;;
	--warmup) warmup=$2; shift ;;
	--size) size=$2; shift ;;
	--topology) topology=$2; shift ;;
	--mark) mark=1 ;;
	--no-aslr) no_aslr=1 ;;
	--rfs) rfs=$2; shift ;;
	--port) port=$2; shift ;;
	--timeout) timeout=$2; shift ;;
	--designs) designs_file=$2; shift ;;
	--out) out=$2; shift ;;
	--server-cpus) server_cpus=$2; shift ;;
	--client-cpus) client_cpus=$2; shift ;;
	--stall) stall=$2; shift ;;
	--stall-mode) stall_mode=$2; shift ;;
	--slow-ms) slow_ms=$2; shift ;;
	-h|--help) usage ;;
	*) echo "bench-once: unknown argument '$1'" >&2; usage ;;
	esac
	shift
done
[ -n "$design" ] && [ -n "$server_cpus" ] && [ -n "$client_cpus" ] || usage
case $mode in short|persistent) ;; *) echo "bench-once: --mode short|persistent" >&2; exit 2 ;; esac
case $proto in echo|http) ;; *) echo "bench-once: --proto echo|http" >&2; exit 2 ;; esac
case $topology in veth|lo) ;; *) echo "bench-once: --topology veth|lo" >&2; exit 2 ;; esac
for v in ops size rfs port timeout; do
	[[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench-once: --$v takes a number" >&2; exit 2; }
done
stall_args=()
if [ -n "$stall" ]; then
	[[ $stall =~ ^([0-9]+):([0-9]+)$ ]] || { echo "bench-once: --stall MS:EVERY_MS" >&2; exit 2; }
	stall_args=(--stall-thread 0 --stall-ms "${BASH_REMATCH[1]}"
		--stall-every-ms "${BASH_REMATCH[2]}" --stall-mode "$stall_mode")
	[ -n "$slow_ms" ] || slow_ms=${BASH_REMATCH[1]}
fi
case $stall_mode in sleep|spin) ;; *) echo "bench-once: --stall-mode sleep|spin" >&2; exit 2 ;; esac
[ -z "$slow_ms" ] || [[ $slow_ms =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench-once: --slow-ms takes a number" >&2; exit 2; }
mkdir -p "$out" || exit 2
out=$(realpath "$out")

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C

# ---------------------------------------------------------------------------
# helpers: cpulist_expand, cpumask, json_str, fail, log, the topology
# (setup_topology, teardown_topology, nsx, ...) and CPU busy fractions

prog='bench-once'
# shellcheck source=bench/guest/lib.sh
. "$here/lib.sh" || exit 2

# ---------------------------------------------------------------------------
# the design

list=$(cpulist_expand "$server_cpus") || { echo "bench-once: bad --server-cpus '$server_cpus'" >&2; exit 2; }
mapfile -t scpus <<<"$list"
list=$(cpulist_expand "$client_cpus") || { echo "bench-once: bad --client-cpus '$client_cpus'" >&2; exit 2; }
mapfile -t ccpus <<<"$list"
ncpus=$(nproc --all)
for c in "${scpus[@]}" "${ccpus[@]}"; do
	[ "$c" -lt "$ncpus" ] || { echo "bench-once: CPU $c does not exist ($ncpus CPUs)" >&2; exit 2; }
done
for c in "${scpus[@]}"; do
	for d in "${ccpus[@]}"; do
		[ "$c" != "$d" ] || { echo "bench-once: CPU $c is both a server and a client CPU" >&2; exit 2; }
	done
done
nsrv=${#scpus[@]}
ncli=${#ccpus[@]}
[ -n "$conns" ] || conns=$((ncli * 8))
[ -n "$warmup" ] || warmup=$((ops / 10))

line=$(awk -v d="$design" '{ sub(/#.*/, "") } $1 == d { print; exit }' "$designs_file")
[ -n "$line" ] || { echo "bench-once: design '$design' not in $designs_file" >&2; exit 2; }
read -r _ setup binary extra <<<"$line"
[ "$extra" = - ] && extra=
read -ra extra_args <<<"$extra"
[[ $binary == /* ]] || binary=$root/$binary
[ -x "$binary" ] || { echo "bench-once: server binary $binary missing (make userspace)" >&2; exit 2; }
mpload=${MP_LOAD_BIN:-$bench/loadgen/mp-load}	# override: testing only
[ -x "$mpload" ] || { echo "bench-once: $mpload missing (make userspace)" >&2; exit 2; }

# ---------------------------------------------------------------------------
# topology

tag=$$
if [ $topology = veth ]; then
	srv_ns=mpsrv$tag cli_ns=mpcli$tag
	srv_dev=mpvs$tag cli_dev=mpvc$tag
	srv_addr=10.77.0.1 cli_addr=10.77.0.2
else
	srv_ns=mplo$tag cli_ns=$srv_ns
	srv_addr=127.0.0.1 cli_addr=127.0.0.1
fi

server_pid=
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	teardown_topology
	[ -n "${tmp:-}" ] && rm -rf "$tmp"
	restore_globals
}
trap cleanup EXIT
trap 'exit 130' INT TERM

design_setup() {
	case $setup in
	none) ;;
	sysctl:*)
		local kv
		local IFS=,
		for kv in ${setup#sysctl:}; do
			nsx "$srv_ns" sysctl -q -w "$kv" || { fail "design setup: sysctl -w $kv failed"; return 1; }
		done
		;;
	script:*)
		local s=${setup#script:}
		[[ $s == /* ]] || s=$root/$s
		MP_SERVER_CPUS=$server_cpus MP_CLIENT_CPUS=$client_cpus MP_NETNS=$srv_ns \
		MP_CLIENT_NETNS=$cli_ns MP_CLIENT_ADDR=$cli_addr MP_ROOT=$root \
			nsx "$srv_ns" "$s" || { fail "design setup: $s failed"; return 1; }
		;;
	*) fail "design $design: unknown setup '$setup'"; return 1 ;;
	esac
}

# ---------------------------------------------------------------------------
# the run

tmp=$(mktemp -d /tmp/bench-once.XXXXXX) || exit 1
ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null

srv_out=$out/server.out
cli_out=$out/load.json
cli_err=$out/load.err
: > "$srv_out"; : > "$cli_out"; : > "$cli_err"
load_json=null load_rc=-1 server_rc=-1 ready=false stats=null owner=null rfd=null
busy_json={} srv_busy_avg=null srv_busy_min=null cli_busy_avg=null
percore=null percore_mode=null server_stalls=null
t_start=$(date +%s.%N)

if ! setup_topology; then
	fail "topology $topology setup failed"
elif ! design_setup; then
	:
else
	# The per-core listen sysctl the server's listen() will see.
	percore_mode=$(percore_value "$srv_ns")
	# The server: one thread per server CPU, pinned.
	server_cmd=("$binary" --addr "$srv_addr" --port "$port" --threads "$nsrv"
		--cpus "$server_cpus" --proto "$proto" "${extra_args[@]}" "${stall_args[@]}")
	log "server: ${server_cmd[*]}"
	# --no-aslr: fixed load addresses, kept in server.maps, for a profile
	# of the server's own code (run-bench --user-profile)
	[ "$no_aslr" = 1 ] && server_cmd=(setarch "$(uname -m)" -R "${server_cmd[@]}")
	ip netns exec "$srv_ns" taskset -c "$server_cpus" "${server_cmd[@]}" > "$srv_out" 2>&1 &
	server_pid=$!
	for ((i = 0; i < 600; i++)); do
		grep -q '^ready' "$srv_out" && { ready=true; break; }
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	[ $ready = true ] && [ "$no_aslr" = 1 ] && cp "/proc/$server_pid/maps" "$out/server.maps"
	if [ $ready != true ]; then
		fail "server did not print 'ready' within 60s: $(tail -n 5 "$srv_out")"
	else
		load_cmd=("$mpload" --addr "$srv_addr" --port "$port" --mode "$mode"
			--proto "$proto" --conns "$conns" --ops "$ops" --size "$size"
			--threads "$ncli" --cpus "$client_cpus" --warmup "$warmup"
			--timeout "$timeout" --json)
		[ $mark = 1 ] && load_cmd+=(--mark)
		[ -n "$slow_ms" ] && load_cmd+=(--slow-ms "$slow_ms")
		log "client: ${load_cmd[*]}"
		cpu_snapshot > "$tmp/snap0"
		nsx "$cli_ns" taskset -c "$client_cpus" "${load_cmd[@]}" > "$cli_out" 2> "$cli_err"
		load_rc=$?
		cpu_snapshot > "$tmp/snap1"
		# Per-CPU busy fraction over the client's run.
		busy_json=$(busy_json "$tmp/snap0" "$tmp/snap1")
		read -r srv_busy_avg srv_busy_min <<<"$(busy_of "$tmp/snap0" "$tmp/snap1" "${scpus[@]}")"
		read -r cli_busy_avg _ <<<"$(busy_of "$tmp/snap0" "$tmp/snap1" "${ccpus[@]}")"
		# Receive Flow Deliver counters of the server's namespace
		# ("all" row of /proc/net/tcp_rfd, warm-up included).
		if row=$(nsx "$srv_ns" cat /proc/net/tcp_rfd 2>/dev/null | grep '^all '); then
			read -r _ a b c d e f g h i j k m <<<"$row"
			rfd="{\"ports\": $a, \"fallbacks\": $b, \"steered\": $c, \"local\": $d, \"offline\": $e"
			rfd+=", \"accepts\": ${f:-0}, \"flow_steered\": ${g:-0}, \"flow_local\": ${h:-0}, \"flow_held\": ${i:-0}"
			rfd+=", \"flow_renewed\": ${j:-0}, \"flow_full\": ${k:-0}, \"flow_cleared\": ${m:-0}}"
			log "tcp_rfd $srv_ns: $row (ports fallbacks steered local offline accepts flow_steered flow_local flow_held flow_renewed flow_full flow_cleared)"
		fi
		if row=$(nsx "$srv_ns" cat /proc/net/tcp_local_established 2>/dev/null | grep '^all '); then
			log "tcp_local_established $srv_ns: $row (hits misses inserts removes mismatches rekeys)"
		fi
		# Per-core listen counters of the server's (fresh) namespace,
		# warm-up included, read after the measurement window.
		if row=$(percore_all "$srv_ns"); then
			percore=$(percore_json "$row")
			log "percore $srv_ns ($PERCORE_SYSCTL=$percore_mode): all $row" \
				"(local_accepts steals overflows remote_completions)"
			# and per CPU, for imbalances between clones
			nsx "$srv_ns" cat "$PERCORE_PROC" 2>/dev/null |
				sed -n '2,$p' | grep -v '^all ' | while read -r r; do
					log "percore $srv_ns cpu $r"
				done
		fi
		[ "$srv_busy_avg" != null ] || log "warning: no CPU busy figures from /proc/stat"
		load_json=$(grep -m1 '^{' "$cli_out")
		if [ -z "$load_json" ]; then
			load_json=null
			fail "mp-load printed no JSON (exit $load_rc): $(tail -n 5 "$cli_err")"
		elif [ $load_rc != 0 ]; then
			fail "mp-load exited $load_rc: $(tail -n 3 "$cli_err")"
		fi
		if [[ $load_json =~ \"errors\":\ *([0-9]+) ]] && [ "${BASH_REMATCH[1]}" != 0 ]; then
			fail "mp-load counted ${BASH_REMATCH[1]} errors"
		fi
	fi
	# Stop the server and collect its statistics.
	if kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid"
		for ((i = 0; i < 300; i++)); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$server_pid" 2>/dev/null; then
			fail "server did not exit within 30s of SIGTERM"
			kill -KILL "$server_pid"
		fi
	else
		fail "server died during the run"
	fi
	wait "$server_pid"
	server_rc=$?
	server_pid=
	[ $server_rc = 0 ] || fail "server exited with status $server_rc: $(tail -n 3 "$srv_out")"
	# "<server>: stall thread 0 stalls N total_ms X (...)" (stderr)
	if [ -n "$stall" ]; then
		st=$(grep -m1 ': stall thread .* stalls ' "$srv_out")
		if [[ $st =~ stalls\ ([0-9]+) ]]; then
			server_stalls=${BASH_REMATCH[1]}
			log "$st"
		else
			fail "--stall: the server reported no stalls"
		fi
	fi
	# a proxy's "owner passive_reads N passive_local N active_reads N
	# active_local N" (srv-proxy --owner-stats)
	if st=$(grep -m1 '^owner ' "$srv_out"); then
		read -r _ _ pr _ pl _ ar _ al <<<"$st"
		owner="{\"passive_reads\": $pr, \"passive_local\": $pl, \"active_reads\": $ar, \"active_local\": $al}"
	fi
	if st=$(grep -m1 '^stats ' "$srv_out"); then
		read -r _ _ acc _ req _ err _ <<<"$st"
		stats="{\"accepted\": ${acc:-null}, \"requests\": ${req:-null}, \"errors\": ${err:-null}}"
		[ "${err:-0}" = 0 ] || fail "server counted $err errors"
	else
		[ $ready = true ] && fail "server printed no stats line"
	fi
fi
t_end=$(date +%s.%N)

# ---------------------------------------------------------------------------
# the result

status=ok
[ ${#errors[@]} = 0 ] || status=error
{
	printf '{"design": %s, "mode": %s, "proto": %s, "topology": %s,\n' \
		"$(json_str "$design")" "$(json_str "$mode")" "$(json_str "$proto")" "$(json_str "$topology")"
	printf ' "server_cpus": %s, "client_cpus": %s, "server_threads": %d, "client_threads": %d,\n' \
		"$(json_str "$server_cpus")" "$(json_str "$client_cpus")" "$nsrv" "$ncli"
	printf ' "ops": %d, "conns": %d, "warmup": %d, "size": %d, "mark": %s, "rfs": %d,\n' \
		"$ops" "$conns" "$warmup" "$size" "$([ $mark = 1 ] && echo true || echo false)" "$rfs"
	printf ' "kernel": %s, "vcpus": %d, "server_cmd": %s, "setup": %s,\n' \
		"$(json_str "$(uname -r)")" "$ncpus" "$(json_str "$binary $extra")" "$(json_str "$setup")"
	printf ' "server_ready": %s, "server_rc": %d, "server_stats": %s,\n' "$ready" "$server_rc" "$stats"
	printf ' "load_rc": %d, "load": %s,\n' "$load_rc" "$load_json"
	printf ' "percore_listen": %s, "percore": %s, "owner": %s, "rfd": %s,\n' \
		"$percore_mode" "$percore" "$owner" "$rfd"
	printf ' "stall": %s, "stall_mode": %s, "slow_ms": %s, "server_stalls": %s,\n' \
		"$(json_str "$stall")" "$(json_str "$stall_mode")" "${slow_ms:-null}" "$server_stalls"
	printf ' "cpu_busy": %s, "server_busy_avg": %s, "server_busy_min": %s, "client_busy_avg": %s,\n' \
		"$busy_json" "$srv_busy_avg" "$srv_busy_min" "$cli_busy_avg"
	printf ' "wall_s": %s, "status": %s, "errors": [' \
		"$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.3f", b - a }')" "$(json_str $status)"
	sep=
	for e in "${errors[@]}"; do printf '%s%s' "$sep" "$(json_str "$e")"; sep=', '; done
	printf ']}\n'
} > "$out/result.json"
log "$status: $design ops/s $(grep -o '"ops_per_s": *[0-9.]*' <<<"$load_json" | grep -o '[0-9.]*$') server busy ${srv_busy_avg}"
[ $status = ok ]
