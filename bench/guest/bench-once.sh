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
rfs=0
port=8080
timeout=300
designs_file=$bench/designs.conf
out=${MP_OUT:-.}
server_cpus=
client_cpus=

usage() {
	sed -n '7,12p' "$0" | sed 's/^# \{0,1\}//' >&2
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
	--rfs) rfs=$2; shift ;;
	--port) port=$2; shift ;;
	--timeout) timeout=$2; shift ;;
	--designs) designs_file=$2; shift ;;
	--out) out=$2; shift ;;
	--server-cpus) server_cpus=$2; shift ;;
	--client-cpus) client_cpus=$2; shift ;;
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
mkdir -p "$out" || exit 2
out=$(realpath "$out")

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C

# ---------------------------------------------------------------------------
# helpers

# "0-2,5" -> "0 1 2 5"
cpulist_expand() {
	local part lo hi c res=()
	local IFS=,
	for part in $1; do
		if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
			lo=${BASH_REMATCH[1]} hi=${BASH_REMATCH[2]}
		elif [[ $part =~ ^[0-9]+$ ]]; then
			lo=$part hi=$part
		else
			return 1
		fi
		for ((c = lo; c <= hi; c++)); do res+=("$c"); done
	done
	[ ${#res[@]} -gt 0 ] || return 1
	printf '%s\n' "${res[@]}"
}

# CPU numbers -> sysfs cpumask ("ffffffff,00000001": 32-bit groups)
cpumask() {
	local c words=() i s=
	for c in "$@"; do
		i=$((c / 32))
		while [ ${#words[@]} -le $i ]; do words+=(0); done
		words[i]=$((words[i] | (1 << (c % 32))))
	done
	for ((i = ${#words[@]} - 1; i >= 0; i--)); do
		if [ -z "$s" ]; then s=$(printf '%x' "${words[i]}")
		else s+=,$(printf '%08x' "${words[i]}"); fi
	done
	echo "$s"
}

json_str() {	# JSON string literal
	local s=$1
	s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/ }
	s=${s//$'\r'/}
	printf '"%s"' "$s"
}

errors=()
fail() {
	echo "bench-once: $*" >&2
	errors+=("$*")
}

log() { echo "bench-once: $*" >&2; }

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
	srv_addr=10.77.0.1
else
	srv_ns=mplo$tag cli_ns=$srv_ns
	srv_addr=127.0.0.1
fi

# Global (init-namespace) sysctls we change, restored on exit.
declare -A saved_global=()
set_global() {	# KEY VAL
	local f=/proc/sys/${1//.//}
	[ -w "$f" ] || { log "warning: cannot set $1 (no $f)"; return 0; }
	[ -n "${saved_global[$1]+x}" ] || saved_global[$1]=$(cat "$f")
	echo "$2" > "$f" || fail "cannot set $1=$2"
}

server_pid=
cleanup() {
	local k
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	# Anything still running in our namespaces was started by us.
	for k in $(ip netns pids "$srv_ns" 2>/dev/null) $(ip netns pids "$cli_ns" 2>/dev/null); do
		kill -KILL "$k" 2>/dev/null
	done
	ip netns del "$srv_ns" 2>/dev/null
	[ "$cli_ns" != "$srv_ns" ] && ip netns del "$cli_ns" 2>/dev/null
	[ -n "${tmp:-}" ] && rm -rf "$tmp"
	for k in "${!saved_global[@]}"; do
		echo "${saved_global[$k]}" > "/proc/sys/${k//.//}" 2>/dev/null
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() {	# NETNS CMD...: run in a namespace, with its own /sys
	local ns=$1; shift
	ip netns exec "$ns" "$@"
}

ns_sysctls() {	# NETNS client|server|both
	local ns=$1 role=$2
	nsx "$ns" sysctl -q -w net.core.somaxconn=65535 \
		net.ipv4.tcp_max_syn_backlog=65535 \
		net.ipv4.ip_local_port_range="1024 65535" || fail "sysctls in $ns failed"
	if [ "$role" != server ]; then
		nsx "$ns" sysctl -q -w net.ipv4.tcp_tw_reuse=1 || fail "tcp_tw_reuse in $ns failed"
	fi
}

set_rps() {	# NETNS DEV CPUS...
	local ns=$1 dev=$2; shift 2
	local q=/sys/class/net/$dev/queues/rx-0 mask
	mask=$(cpumask "$@")
	nsx "$ns" sh -c "echo $mask > $q/rps_cpus" || fail "cannot set RPS on $dev"
	if [ "$rfs" -gt 0 ]; then
		nsx "$ns" sh -c "echo $rfs > $q/rps_flow_cnt" || fail "cannot set RFS on $dev"
	fi
}

setup_topology() {
	ip netns add "$srv_ns" || return 1
	ip -n "$srv_ns" link set lo up || return 1
	if [ $topology = lo ]; then
		ns_sysctls "$srv_ns" both
		return 0
	fi
	ip netns add "$cli_ns" || return 1
	ip -n "$cli_ns" link set lo up || return 1
	ip link add "$srv_dev" netns "$srv_ns" type veth peer name "$cli_dev" netns "$cli_ns" || return 1
	ip -n "$srv_ns" addr add 10.77.0.1/24 dev "$srv_dev" || return 1
	ip -n "$cli_ns" addr add 10.77.0.2/24 dev "$cli_dev" || return 1
	ip -n "$srv_ns" link set "$srv_dev" up || return 1
	ip -n "$cli_ns" link set "$cli_dev" up || return 1
	ns_sysctls "$srv_ns" server
	ns_sysctls "$cli_ns" client
	set_rps "$srv_ns" "$srv_dev" "${scpus[@]}"
	set_rps "$cli_ns" "$cli_dev" "${ccpus[@]}"
	# RPS queues to a per-CPU backlog: make it deep enough for a burst
	# of connection setups; RFS needs the global flow table.
	set_global net.core.netdev_max_backlog 10000
	[ "$rfs" -gt 0 ] && set_global net.core.rps_sock_flow_entries "$rfs"
	# Both ends up (carrier)?
	local i
	for i in $(seq 100); do
		ip -n "$srv_ns" -o link show dev "$srv_dev" | grep -q 'state UP' &&
			ip -n "$cli_ns" -o link show dev "$cli_dev" | grep -q 'state UP' && return 0
		sleep 0.1
	done
	fail "veth: link not up after 10s"
	return 1
}

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
			nsx "$srv_ns" "$s" || { fail "design setup: $s failed"; return 1; }
		;;
	*) fail "design $design: unknown setup '$setup'"; return 1 ;;
	esac
}

# /proc/stat per-CPU busy jiffies and total jiffies: "cpu busy total" lines.
cpu_snapshot() {
	awk '/^cpu[0-9]/ { t = 0; for (i = 2; i <= NF; i++) t += $i;
		# guest and guest_nice (fields 10, 11) are already in user/nice
		if (NF >= 11) t -= $10 + $11;
		idle = $5 + $6; print substr($1, 4), t - idle, t }' /proc/stat
}

# ---------------------------------------------------------------------------
# the run

tmp=$(mktemp -d /tmp/bench-once.XXXXXX) || exit 1
ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null

srv_out=$out/server.out
cli_out=$out/load.json
cli_err=$out/load.err
: > "$srv_out"; : > "$cli_out"; : > "$cli_err"
load_json=null load_rc=-1 server_rc=-1 ready=false stats=null
busy_json={} srv_busy_avg=null srv_busy_min=null cli_busy_avg=null
t_start=$(date +%s.%N)

if ! setup_topology; then
	fail "topology $topology setup failed"
elif ! design_setup; then
	:
else
	# The server: one thread per server CPU, pinned.
	server_cmd=("$binary" --addr "$srv_addr" --port "$port" --threads "$nsrv"
		--cpus "$server_cpus" --proto "$proto" "${extra_args[@]}")
	log "server: ${server_cmd[*]}"
	ip netns exec "$srv_ns" taskset -c "$server_cpus" "${server_cmd[@]}" > "$srv_out" 2>&1 &
	server_pid=$!
	for ((i = 0; i < 600; i++)); do
		grep -q '^ready' "$srv_out" && { ready=true; break; }
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ $ready != true ]; then
		fail "server did not print 'ready' within 60s: $(tail -n 5 "$srv_out")"
	else
		load_cmd=("$mpload" --addr "$srv_addr" --port "$port" --mode "$mode"
			--proto "$proto" --conns "$conns" --ops "$ops" --size "$size"
			--threads "$ncli" --cpus "$client_cpus" --warmup "$warmup"
			--timeout "$timeout" --json)
		[ $mark = 1 ] && load_cmd+=(--mark)
		log "client: ${load_cmd[*]}"
		snap0=$(cpu_snapshot)
		nsx "$cli_ns" taskset -c "$client_cpus" "${load_cmd[@]}" > "$cli_out" 2> "$cli_err"
		load_rc=$?
		snap1=$(cpu_snapshot)
		# Per-CPU busy fraction over the client's run.
		# (no process substitution: the VM's /dev has no /dev/fd)
		sort <<<"$snap0" > "$tmp/snap0"
		sort <<<"$snap1" > "$tmp/snap1"
		busy_json=$(join -j1 "$tmp/snap0" "$tmp/snap1" | awk '
			{ db = $4 - $2; dt = $5 - $3; b[$1] = dt > 0 ? db / dt : 0 }
			END { s = "{"; n = 0
				for (c in b) s = s (n++ ? ", " : "") sprintf("\"%s\": %.4f", c, b[c])
				print s "}" }')
		busy_of() {	# CPU... -> "avg min"
			local c list=" $* "
			join -j1 "$tmp/snap0" "$tmp/snap1" | awk -v l="$list" '
				index(l, " " $1 " ") { dt = $5 - $3; b = dt > 0 ? ($4 - $2) / dt : 0
					s += b; n++; if (n == 1 || b < m) m = b }
				END { if (n) printf "%.4f %.4f\n", s / n, m; else print "null null" }'
		}
		read -r srv_busy_avg srv_busy_min <<<"$(busy_of "${scpus[@]}")"
		read -r cli_busy_avg _ <<<"$(busy_of "${ccpus[@]}")"
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
