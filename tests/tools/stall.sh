#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The stalled-worker option of the epoll servers (--stall-thread, --stall-ms,
# --stall-every-ms, --stall-mode) and mp-load's max latency and --slow-ms
# count, on the host over loopback: a one-thread server that stalls 200 ms
# every 300 ms must make some connection wait >= 150 ms (max_us, slow > 0)
# and report its stalls on exit; without the option no connection may wait
# that long.  Bad stall options must be refused (exit 2).
set -u
cd "$(dirname "$0")/../../bench" || exit 1
make -s -j1 -C servers >/dev/null && make -s -j1 -C loadgen >/dev/null ||
	{ echo "FAIL: build"; exit 1; }

port=${PORT_BASE:-18700}
passed=0
failed=0
pid=
TMP=$(mktemp -d)
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$TMP"' EXIT

pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# start CMD...: start a server on the next port, wait for "ready".
start() {
	local tries
	port=$((port + 1))
	: >"$TMP/srv.out"
	: >"$TMP/srv.err"
	"$@" --port "$port" >"$TMP/srv.out" 2>"$TMP/srv.err" &
	pid=$!
	for ((tries = 0; tries < 300; tries++)); do
		grep -q '^ready' "$TMP/srv.out" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	fail "$*: no ready line: $(cat "$TMP/srv.err")"
	kill "$pid" 2>/dev/null
	pid=
	return 1
}

stop() {
	kill -TERM "$pid"
	wait "$pid"
	local rc=$?
	pid=
	return $rc
}

# load: short connections for 0.5 s or more (more than a 300 ms period even
# on a fast host, where 10000 take about 0.6 s); sets max_us and slow.
load() {
	./loadgen/mp-load --port "$port" --ops 10000 --conns 4 --slow-ms 150 \
		--timeout 10 --json >"$TMP/load.json" 2>"$TMP/load.err" || return 1
	max_us=$(grep -o '"max_us":[0-9.]*' "$TMP/load.json" | cut -d: -f2)
	slow=$(grep -o '"slow":[0-9]*' "$TMP/load.json" | cut -d: -f2)
	[ -n "$max_us" ] && [ -n "$slow" ]
}

for srv in srv-epoll-shared srv-epoll-reuseport; do
	# With the stall: the load spans one period or more (see load above);
	# periods; each stall holds up the connections of its one thread.
	if start "servers/$srv" --threads 1 --stall-thread 0 --stall-ms 200 \
		 --stall-every-ms 300 --stall-mode sleep; then
		if ! load; then
			fail "$srv stall: mp-load failed: $(cat "$TMP/load.err")"
			stop
		elif ! stop; then
			fail "$srv stall: server exit status non-zero: $(cat "$TMP/srv.err")"
		elif ! awk -v m="$max_us" 'BEGIN { exit !(m >= 150000) }' || [ "$slow" -lt 1 ]; then
			fail "$srv stall: max latency ${max_us} us, $slow slower than 150 ms (want >= 150 ms, >= 1)"
		elif ! grep -Eq "stall thread 0 stalls [1-9]" "$TMP/srv.err"; then
			fail "$srv stall: no stall report: $(cat "$TMP/srv.err")"
		else
			pass "$srv stall 200/300 ms: max ${max_us} us, $slow slower than 150 ms; $(grep stalls "$TMP/srv.err")"
		fi
	fi

	# The same with spinning instead of sleeping, shorter.
	if start "servers/$srv" --threads 1 --stall-ms 200 --stall-every-ms 300 \
		 --stall-mode spin; then
		if load && stop && awk -v m="$max_us" 'BEGIN { exit !(m >= 150000) }'; then
			pass "$srv stall spin: max ${max_us} us, $slow slower than 150 ms"
		else
			fail "$srv stall spin: max ${max_us:-?} us: $(cat "$TMP/load.err" "$TMP/srv.err")"
			[ -n "$pid" ] && stop
		fi
	fi

	# Without it: nothing waits 150 ms (a second try forgives one
	# scheduling hiccup of a busy host).
	ok=0
	for try in 1 2; do
		start "servers/$srv" --threads 1 || break
		if load && stop && awk -v m="$max_us" 'BEGIN { exit !(m < 150000) }' &&
		   [ "$slow" = 0 ] && ! grep -q stall "$TMP/srv.err"; then
			ok=1
			break
		fi
		[ -n "$pid" ] && stop
	done
	if [ $ok = 1 ]; then
		pass "$srv no stall: max ${max_us} us, $slow slower than 150 ms"
	else
		fail "$srv no stall: max ${max_us:-?} us, ${slow:-?} slower than 150 ms"
	fi
done

# Bad options: exit 2.
bad() {
	local rc
	"$@" --port $((port + 1)) >/dev/null 2>"$TMP/bad.err" &
	local p=$!
	( sleep 5; kill "$p" 2>/dev/null ) &
	wait "$p"
	rc=$?
	if [ $rc = 2 ]; then
		pass "refused ($(head -n 1 "$TMP/bad.err")): $*"
	else
		fail "want exit 2, got $rc: $*"
	fi
}
bad servers/srv-epoll-shared --threads 2 --stall-thread 2 --stall-ms 10 --stall-every-ms 100
bad servers/srv-epoll-shared --threads 1 --stall-ms 100 --stall-every-ms 100
bad servers/srv-epoll-reuseport --threads 1 --stall-ms 10 --stall-every-ms 100 --stall-mode nap
bad servers/srv-uring --threads 1 --stall-ms 10 --stall-every-ms 100
bad loadgen/mp-load --slow-ms 0

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
