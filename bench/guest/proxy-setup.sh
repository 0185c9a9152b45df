#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Setup of the proxy designs (bench/designs.conf), run by bench-once.sh in
# the server's namespace: the backend, srv-epoll-shared (echo) on the
# client CPUs in the client's namespace at $MP_CLIENT_ADDR:9090; in the
# server's namespace, per-core listen on, and
# net.ipv4.tcp_rfd=$MP_PROXY_RFD and net.ipv4.tcp_local_established=
# $MP_PROXY_LEST (defaults: 0, and MP_PROXY_RFD's value).  The backend dies
# with the client's namespace at teardown.
set -euo pipefail
: "${MP_CLIENT_NETNS:?} ${MP_CLIENT_ADDR:?} ${MP_CLIENT_CPUS:?} ${MP_ROOT:?}"
rfd=${MP_PROXY_RFD:-0}
lest=${MP_PROXY_LEST:-$rfd}

sysctl -q -w net.ipv4.tcp_percore_listen=1
for kv in tcp_rfd=$rfd tcp_local_established=$lest; do
	if [ -e "/proc/sys/net/ipv4/${kv%=*}" ]; then
		sysctl -q -w "net.ipv4.$kv"
	elif [ "${kv#*=}" != 0 ]; then
		echo "proxy-setup: no net.ipv4.${kv%=*} on this kernel" >&2
		exit 1
	fi
done

log=$(mktemp /tmp/proxy-backend.XXXXXX)
ip netns exec "$MP_CLIENT_NETNS" setsid taskset -c "$MP_CLIENT_CPUS" \
	"$MP_ROOT/bench/servers/srv-epoll-shared" --addr "$MP_CLIENT_ADDR" \
	--port 9090 --cpus "$MP_CLIENT_CPUS" --proto echo \
	< /dev/null > "$log" 2>&1 &
for _ in $(seq 100); do
	grep -q '^ready' "$log" && exit 0
	sleep 0.1
done
echo "proxy-setup: the backend did not start: $(tail -n 3 "$log")" >&2
exit 1
