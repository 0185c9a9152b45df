#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run-tests.sh BUILD_DIR: run every test (ours, then upstream) as root on
# the running kernel, printing TAP; results also go to $MP_OUT/results.tap
# when MP_OUT is set (the test VM's results share).  Exit 1 on any failure.
set -u
dir=$(realpath "${1:-../build/tests}")
here=$(dirname "$(realpath "$0")")
out=${MP_OUT:-}
tap=${out:+$out/results.tap}
per_test_timeout=${MP_TEST_TIMEOUT:-600}

[ "$(id -u)" = 0 ] || { echo "run-tests: must run as root" >&2; exit 2; }

# Each entry: NAME DIR COMMAND...
tests=()
for t in "$dir"/net/*; do
	[ -x "$t" ] && tests+=("net/$(basename "$t")|$dir/net|./$(basename "$t")")
done
# Upstream selftests, each in a network namespace of its own (tests/in-netns).
nsx=$here/in-netns
tests+=(
	"upstream/reuseport_bpf|$dir/upstream|$nsx ./reuseport_bpf"
	"upstream/reuseport_bpf_cpu|$dir/upstream|$nsx ./reuseport_bpf_cpu"
	"upstream/reuseport_dualstack|$dir/upstream|$nsx ./reuseport_dualstack"
	"upstream/reuseport_addr_any|$dir/upstream|$nsx ./reuseport_addr_any.sh"
	"upstream/reuseaddr_conflict|$dir/upstream|$nsx ./reuseaddr_conflict"
	"upstream/so_incoming_cpu|$dir/upstream|$nsx ./so_incoming_cpu"
	"upstream/bind_wildcard|$dir/upstream|$nsx ./bind_wildcard"
	"upstream/bind_timewait|$dir/upstream|$nsx ./bind_timewait"
	"upstream/sk_bind_sendto_listen|$dir/upstream|$nsx ./sk_bind_sendto_listen"
	"upstream/sk_connect_zero_addr|$dir/upstream|$nsx ./sk_connect_zero_addr"
	"upstream/so_netns_cookie|$dir/upstream|$nsx ./so_netns_cookie"
	"upstream/tcp_inq|$dir/upstream|$nsx ./tcp_inq"
)
# Too slow for the emulated test VM (160,000 connections under KASAN): run
# with MP_SLOW_TESTS=1, or on a real machine.
if [ "${MP_SLOW_TESTS:-0}" = 1 ]; then
	tests+=("upstream/tcp_fastopen_backup_key|$dir/upstream|$nsx ./tcp_fastopen_backup_key.sh")
fi
for t in "$here"/scripts/*.sh; do
	[ -x "$t" ] && tests+=("scripts/$(basename "$t" .sh)|$here/..|$t")
done
base=("${tests[@]}")
# Second pass: with per-core listen on in the initial netns (mode 1: plain
# listeners get clones, SO_REUSEPORT ones are left alone; new namespaces
# copy it), every test that does not set the mode itself runs again: the
# same semantics must hold.
pcl_sysctl=/proc/sys/net/ipv4/tcp_percore_listen
if [ "${MP_PERCORE_PASS:-1}" = 1 ] && [ -w "$pcl_sysctl" ]; then
	n1=${#tests[@]}
	for ((i = 0; i < n1; i++)); do
		e=${tests[$i]}
		case ${e%%|*} in
		*percore*) continue ;;
		# FIFO order holds per clone, and the listener-wide backlog is
		# exact only up to a child per CPU adding at once: these
		# single-queue tests run on one CPU, so that all their
		# connections share one clone.
		net/accept_basic | net/listen_backlog)
			IFS='|' read -r nm cwd cmd <<<"$e"
			tests+=("$nm[percore]|$cwd|taskset -c $(cut -d, -f1 <<<"$(taskset -pc $$ | sed 's/.*: //; s/-.*//')") $cmd")
			continue ;;
		esac
		tests+=("${e%%|*}[percore]|${e#*|}")
	done
fi
# Third pass: the upstream selftests and the example servers with per-core
# listen and Receive Flow Deliver on in the initial netns
# (net.ipv4.tcp_percore_listen=1, net.ipv4.tcp_rfd=1; new namespaces copy
# them: accepted connections are delivered to the accepting CPU) and the
# local established tables on and checking every hit
# against ehash (net.ipv4.tcp_local_established=2, in the initial netns and,
# through tests/in-netns, in each test's own): connect() picks other ports,
# replies are steered, lookups go through the local tables, and nothing
# else may change (a mismatch warns: a splat).
rfd_sysctl=/proc/sys/net/ipv4/tcp_rfd
lest_sysctl=/proc/sys/net/ipv4/tcp_local_established
if [ "${MP_RFD_PASS:-1}" = 1 ] && [ -w "$rfd_sysctl" ] && [ -w "$lest_sysctl" ]; then
	for e in "${base[@]}"; do
		case ${e%%|*} in
		upstream/* | scripts/servers)
			IFS='|' read -r nm cwd cmd <<<"$e"
			tests+=("$nm[rfd]|$cwd|env MP_NETNS_SYSCTLS=net.ipv4.tcp_local_established=2 $cmd") ;;
		esac
	done
fi
# MP_TESTS (a regex) selects tests by name.
if [ -n "${MP_TESTS:-}" ]; then
	sel=()
	for e in "${tests[@]}"; do [[ ${e%%|*} =~ $MP_TESTS ]] && sel+=("$e"); done
	tests=("${sel[@]}")
fi

emit() {
	echo "$@"
	[ -n "$tap" ] && echo "$@" >> "$tap"
}
[ -n "$tap" ] && : > "$tap"
emit "TAP version 13"
emit "1..${#tests[@]}"
n=0 fail=0
logdir=${out:-/tmp}/test-logs
mkdir -p "$logdir"
for e in "${tests[@]}"; do
	IFS='|' read -r name cwd cmd <<<"$e"
	n=$((n + 1))
	log=$logdir/${name//[\/\[\]]/_}.log
	start=$(date +%s)
	case $name in
	*"[percore]" | *"[rfd]") echo 1 > "$pcl_sysctl" ;;
	*) [ -w "${pcl_sysctl:-/nonexistent}" ] && echo 0 > "$pcl_sysctl" ;;
	esac
	case $name in
	*"[rfd]") echo 1 > "$rfd_sysctl"; echo 2 > "$lest_sysctl" ;;
	*)	[ -w "${rfd_sysctl:-/nonexistent}" ] && echo 0 > "$rfd_sysctl"
		[ -w "${lest_sysctl:-/nonexistent}" ] && echo 0 > "$lest_sysctl" ;;
	esac
	(cd "$cwd" && timeout -k 10 "$per_test_timeout" $cmd) > "$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	if [ $rc = 0 ]; then
		emit "ok $n $name # ${secs}s"
	elif [ $rc = 4 ]; then
		emit "ok $n $name # SKIP (see $log)"
	else
		fail=$((fail + 1))
		[ $rc = 124 ] && why="timed out after ${per_test_timeout}s" || why="exit $rc"
		emit "not ok $n $name # $why"
		sed 's/^/#   /' "$log" | tail -n 40
		[ -n "$tap" ] && sed 's/^/#   /' "$log" | tail -n 40 >> "$tap"
	fi
done
[ $fail = 0 ]
