# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2154  # the caller sets prog, topology, srv_ns, ...
#
# bench/guest/lib.sh: helpers shared by the guest-side benchmark scripts
# (bench/guest/bench-once.sh, bench/nginx/nginx-guest.sh).  Sourced, not run.
#
# The caller sets, before calling the topology functions:
#   prog              name for messages ("bench-once")
#   topology          veth | lo
#   srv_ns cli_ns     namespace names (equal for lo)
#   srv_dev cli_dev   veth end names (veth only)
#   scpus ccpus       arrays of server and client CPU numbers
#   rfs               RFS flow table size (0: off)
# Messages go to stderr; fail() also appends to the array "errors".

errors=()
fail() {
	echo "$prog: $*" >&2
	errors+=("$*")
}

log() { echo "$prog: $*" >&2; }

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

# ---------------------------------------------------------------------------
# global sysctls

# Global (init-namespace) sysctls we change, restored by restore_globals.
declare -A saved_global=()
set_global() {	# KEY VAL
	local f=/proc/sys/${1//.//}
	[ -w "$f" ] || { log "warning: cannot set $1 (no $f)"; return 0; }
	[ -n "${saved_global[$1]+x}" ] || saved_global[$1]=$(cat "$f")
	echo "$2" > "$f" || fail "cannot set $1=$2"
}

restore_globals() {
	local k
	for k in "${!saved_global[@]}"; do
		echo "${saved_global[$k]}" > "/proc/sys/${k//.//}" 2>/dev/null
	done
}

# ---------------------------------------------------------------------------
# topology

nsx() {	# NETNS CMD...: run in a namespace, with its own /sys
	local ns=$1; shift
	ip netns exec "$ns" "$@"
}

# The per-core listen sysctl (issue 3): per namespace, and a new namespace
# copies the initial namespace's value.  The topology pins it to 0 in the
# namespaces it creates (when the kernel has it), so that only a design's
# own setup turns it on, whatever the initial namespace says.
PERCORE_SYSCTL=net.ipv4.tcp_percore_listen
PERCORE_PROC=/proc/net/tcp_percore_listen

has_percore() {	# NETNS: does the kernel have the per-core listen sysctl?
	nsx "$1" test -e /proc/sys/net/ipv4/tcp_percore_listen
}

percore_value() {	# NETNS -> the sysctl's value there, or "null"
	local v
	v=$(nsx "$1" cat /proc/sys/net/ipv4/tcp_percore_listen 2>/dev/null) || v=
	[[ $v =~ ^[0-9]+$ ]] && echo "$v" || echo null
}

# NETNS -> "local_accepts steals overflows remote_completions" of the "all"
# row of the namespace's /proc/net/tcp_percore_listen; nothing (status 1)
# when the file does not exist.
percore_all() {
	local row
	# shellcheck disable=SC2016
	row=$(nsx "$1" awk '$1 == "all" { print $2, $3, $4, $5; exit }' "$PERCORE_PROC" 2>/dev/null) || return 1
	[ -n "$row" ] || return 1
	echo "$row"
}

# "LA ST OV RC" -> JSON object; "null" for an empty argument.
percore_json() {
	local la st ov rc
	read -r la st ov rc <<<"$1"
	if [ -z "$la" ]; then echo null; return; fi
	printf '{"local_accepts": %s, "steals": %s, "overflows": %s, "remote_completions": %s}' \
		"$la" "$st" "$ov" "$rc"
}

ns_sysctls() {	# NETNS client|server|both
	local ns=$1 role=$2
	nsx "$ns" sysctl -q -w net.core.somaxconn=65535 \
		net.ipv4.tcp_max_syn_backlog=65535 \
		net.ipv4.ip_local_port_range="1024 65535" || fail "sysctls in $ns failed"
	if [ "$role" != server ]; then
		nsx "$ns" sysctl -q -w net.ipv4.tcp_tw_reuse=1 || fail "tcp_tw_reuse in $ns failed"
	fi
	if has_percore "$ns"; then
		nsx "$ns" sysctl -q -w "$PERCORE_SYSCTL=0" || fail "$PERCORE_SYSCTL=0 in $ns failed"
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
	if [ "$topology" = lo ]; then
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

# Kill whatever still runs in our namespaces (we started it) and delete them.
teardown_topology() {
	local k
	for k in $(ip netns pids "$srv_ns" 2>/dev/null) $(ip netns pids "$cli_ns" 2>/dev/null); do
		kill -KILL "$k" 2>/dev/null
	done
	ip netns del "$srv_ns" 2>/dev/null
	[ "$cli_ns" != "$srv_ns" ] && ip netns del "$cli_ns" 2>/dev/null
	return 0
}

# ---------------------------------------------------------------------------
# CPU busy fractions

# /proc/stat per-CPU busy jiffies and total jiffies: "cpu busy total" lines,
# sorted for join(1).
cpu_snapshot() {
	awk '/^cpu[0-9]/ { t = 0; for (i = 2; i <= NF; i++) t += $i;
		# guest and guest_nice (fields 10, 11) are already in user/nice
		if (NF >= 11) t -= $10 + $11;
		idle = $5 + $6; print substr($1, 4), t - idle, t }' /proc/stat | sort
}

# SNAP0 SNAP1 (files from cpu_snapshot) -> {"cpu": busy fraction, ...}
busy_json() {
	join -j1 "$1" "$2" | awk '
		{ db = $4 - $2; dt = $5 - $3; b[$1] = dt > 0 ? db / dt : 0 }
		END { s = "{"; n = 0
			for (c in b) s = s (n++ ? ", " : "") sprintf("\"%s\": %.4f", c, b[c])
			print s "}" }'
}

# SNAP0 SNAP1 CPU... -> "avg min" busy fraction of those CPUs ("null null")
busy_of() {
	local s0=$1 s1=$2; shift 2
	local list=" $* "
	join -j1 "$s0" "$s1" | awk -v l="$list" '
		index(l, " " $1 " ") { dt = $5 - $3; b = dt > 0 ? ($4 - $2) / dt : 0
			s += b; n++; if (n == 1 || b < m) m = b }
		END { if (n) printf "%.4f %.4f\n", s / n, m; else print "null null" }'
}
