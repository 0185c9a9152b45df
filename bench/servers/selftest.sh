#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Self-test of the baseline servers and mp-load over loopback.
#
# Each server design runs with 2 threads, once per protocol: mp-load runs
# short and persistent operations against it (no errors allowed, and the
# server's request count must match), wrk hammers the http server with
# keep-alive, pipelined and "Connection: close" requests, and SIGTERM (or
# SIGINT) must stop it with exit status 0 and a clean stats line.  Then
# mp-load is pointed at mp-badsrv and at a closed port, and must exit 1
# naming the right kind of failure.
#
# Usage: bench/servers/selftest.sh    (PORT_BASE=18500, OPS=2000, WARMUP=200,
#        CONNS=50 by default; the environment overrides them)
# QUICK=1 (for the slow emulated test VM): only the three designs and the
# two proxies with mp-load, no wrk, variants or fault injection.
# Exits non-zero if anything failed.

set -u
cd "$(dirname "$0")" || exit 1
SRV_DIR=$PWD
LOAD=$PWD/../loadgen/mp-load
BADSRV=$PWD/../loadgen/mp-badsrv

OPS=${OPS:-2000}
QUICK=${QUICK:-0}
WARMUP=${WARMUP:-200}
CONNS=${CONNS:-50}
port=${PORT_BASE:-18500}
passed=0
failed=0
pid=

TMP=$(mktemp -d)
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

if ! make -s -j1 -C "$SRV_DIR" || ! make -s -j1 -C "$SRV_DIR/../loadgen"; then
	echo "FAIL: build"
	exit 1
fi
# mp-proxy (the proxy on channels): built here on the host; the test VM
# (QUICK=1) runs what make test built.
if [ "$QUICK" != 1 ] && ! make -s -j1 -C "$SRV_DIR/../../examples" mp-proxy; then
	echo "FAIL: build of examples/mp-proxy"
	exit 1
fi

# start NAME CMD...: run CMD in the background on the next port and wait
# for its "ready" line (printed once it listens).  The output files are
# emptied here, before the fork: the "&" child truncates them only when it
# gets to run, and on a busy machine that can be after the first grep below,
# which then found the previous server's "ready" line and the checks ran
# against a port nobody listened on yet (connect failures).  The wait is
# long because it costs nothing unless the server never gets ready.
start() {
	local name=$1 tries
	shift
	port=$((port + 1))
	: >"$TMP/srv.out"
	: >"$TMP/srv.err"
	"$@" --port "$port" >"$TMP/srv.out" 2>"$TMP/srv.err" &
	pid=$!
	for ((tries = 0; tries < 600; tries++)); do
		grep -q "^ready .* port $port " "$TMP/srv.out" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	fail "$name: no ready line; stderr: $(cat "$TMP/srv.err")"
	kill "$pid" 2>/dev/null
	wait "$pid"
	pid=
	return 1
}

# stop NAME SIGNAL MIN_REQUESTS [ACCEPTED [REQUESTS]]: stop the server and
# check its exit status and stats line (exact counts where given).
stop() {
	local name=$1 sig=$2 min=$3 acc=${4:-} req=${5:-} rc line
	kill -s "$sig" "$pid"
	wait "$pid"
	rc=$?
	pid=
	line=$(grep '^stats ' "$TMP/srv.out" | tail -n 1)
	if [ "$rc" -ne 0 ]; then
		fail "$name: exit status $rc after SIG$sig; stderr: $(cat "$TMP/srv.err")"
	elif ! [[ $line =~ ^stats\ accepted\ ([0-9]+)\ requests\ ([0-9]+)\ errors\ ([0-9]+)$ ]]; then
		fail "$name: bad stats line '$line'"
	elif [ "${BASH_REMATCH[3]}" -ne 0 ]; then
		fail "$name: server counted errors: $line"
	elif [ "${BASH_REMATCH[2]}" -lt "$min" ] ||
	     { [ -n "$acc" ] && [ "${BASH_REMATCH[1]}" -ne "$acc" ]; } ||
	     { [ -n "$req" ] && [ "${BASH_REMATCH[2]}" -ne "$req" ]; }; then
		fail "$name: unexpected counts: $line (want accepted ${acc:-any}, requests ${req:-">= $min"})"
	else
		pass "$name: SIG$sig -> exit 0, $line"
	fi
}

# load NAME MP-LOAD-ARGS...: must succeed with zero errors.
load() {
	local name=$1 rc
	shift
	"$LOAD" --port "$port" --ops $OPS --warmup $WARMUP --conns $CONNS \
		--threads 2 --json "$@" >"$TMP/load.json" 2>"$TMP/load.err"
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q '"errors":0,' "$TMP/load.json"; then
		pass "$name: $(sed -n 's/^mp-load: //p' "$TMP/load.err")"
	else
		fail "$name: mp-load exit $rc: $(cat "$TMP/load.err")"
	fi
}

# wrk_run NAME WRK-ARGS...: a 2 s wrk run without socket errors or non-2xx.
# wrk counts a response slower than --timeout (default 2 s) as a socket
# error: 10 s keeps a busy machine from failing the check.
wrk_run() {
	local name=$1 rc
	shift
	wrk -t2 -c50 -d2s --timeout 10s "$@" "http://127.0.0.1:$port/" >"$TMP/wrk.out" 2>&1
	rc=$?
	if [ "$rc" -ne 0 ] || ! grep -Eq '^ *[1-9][0-9]* requests in' "$TMP/wrk.out" ||
	   grep -Eq 'Socket errors|Non-2xx' "$TMP/wrk.out"; then
		fail "$name: wrk exit $rc: $(cat "$TMP/wrk.out")"
	else
		pass "$name: $(grep -E 'requests in' "$TMP/wrk.out" | sed 's/^ *//')"
	fi
}

cat >"$TMP/pipeline.lua" <<'EOF'
init = function(args)
	local r = {}
	for i = 1, 16 do r[i] = wrk.format(nil, "/") end
	req = table.concat(r)
end
request = function() return req end
EOF

# Per run: OPS + WARMUP operations; short mode opens one connection per
# operation, persistent mode CONNS connections.
per_run=$((OPS + WARMUP))

designs=("srv-epoll-shared" "srv-epoll-reuseport" "srv-uring")
[ "$QUICK" = 1 ] || designs+=("srv-epoll-shared --trigger level"
	"srv-epoll-reuseport --trigger level" "srv-uring --shared-listener")

for design in "${designs[@]}"; do
	sig=TERM
	[ "$design" = "srv-uring --shared-listener" ] && sig=INT

	# shellcheck disable=SC2086  # $design is a command with options
	if start "$design echo" ./$design --threads 2 --cpus 0-1 --proto echo; then
		load "$design echo short" --mode short --proto echo
		load "$design echo persistent" --mode persistent --proto echo
		stop "$design echo" $sig 0 $((per_run + CONNS)) $((2 * per_run))
	fi

	# shellcheck disable=SC2086
	if start "$design http" ./$design --threads 2 --cpus 0-1 --proto http; then
		load "$design http short" --mode short --proto http
		load "$design http persistent" --mode persistent --proto http
		if [ "$QUICK" = 1 ]; then
			stop "$design http" $sig $((2 * per_run))
			continue
		fi
		wrk_run "$design wrk keep-alive"
		wrk_run "$design wrk pipelined x16" -s "$TMP/pipeline.lua"
		wrk_run "$design wrk Connection: close" -H 'Connection: close'
		stop "$design http" $sig $((2 * per_run))
	fi
done

# The proxy (srv-proxy) in front of an echo backend: every operation goes
# through it both ways, and --owner-stats counts the reads of both sides
# (also in the test VM: mp-proxy on the device there).
bport=$((port + 1000))
./srv-epoll-shared --addr 127.0.0.1 --port "$bport" --threads 1 --proto echo \
	>"$TMP/backend.out" 2>&1 &
bpid=$!
for ((i = 0; i < 600; i++)); do
	grep -q '^ready' "$TMP/backend.out" && break
	sleep 0.1
done
# The same proxy on MegaPipe channels (examples/mp-proxy: /dev/megapipe
# where it exists, libmegapipe's epoll backend elsewhere).
for proxy in ./srv-proxy ../../examples/mp-proxy; do
	name=${proxy##*/}
	[ -x "$proxy" ] || { fail "$name: not built"; continue; }
	start "$name" "$proxy" --threads 2 --cpus 0-1 \
		--backend "127.0.0.1:$bport" --owner-stats || continue
	load "$name echo short" --mode short --proto echo
	load "$name echo persistent" --mode persistent --proto echo
	stop "$name" TERM 0 $((per_run + CONNS)) $((2 * per_run))
	if [[ $(grep '^owner ' "$TMP/srv.out") =~ passive_reads\ ([0-9]+).*active_reads\ ([0-9]+) ]] &&
	   [ "${BASH_REMATCH[1]}" -ge $((2 * per_run)) ] &&
	   [ "${BASH_REMATCH[2]}" -ge $((2 * per_run)) ]; then
		pass "$name owner stats: $(grep '^owner ' "$TMP/srv.out")"
	else
		fail "$name: owner line missing or short: $(grep '^owner ' "$TMP/srv.out")"
	fi
done
kill "$bpid" 2>/dev/null
wait "$bpid" 2>/dev/null

if [ "$QUICK" = 1 ]; then
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
fi

# IPv6, where the host has ::1.
if ip -6 addr show lo 2>/dev/null | grep -q '::1'; then
	if start "srv-epoll-reuseport ipv6" ./srv-epoll-reuseport --addr ::1 \
		 --threads 2 --proto http; then
		load "ipv6 http short" --addr ::1 --mode short --proto http
		load "ipv6 http persistent" --addr ::1 --mode persistent --proto http
		stop "srv-epoll-reuseport ipv6" TERM $((2 * per_run))
	fi
fi

# Debian's nginx behind the servers' options and output (srv-nginx, a
# design of examples/bench-http.conf), where nginx is installed.
if command -v nginx >/dev/null; then
	for rp in "" --reuseport; do
		# shellcheck disable=SC2086  # $rp: no option or one
		if start "srv-nginx $rp" ./srv-nginx --threads 2 --cpus 0-1 --proto http $rp; then
			load "srv-nginx $rp http short" --mode short --proto http
			load "srv-nginx $rp http persistent" --mode persistent --proto http
			stop "srv-nginx $rp" TERM $((2 * per_run)) $((per_run + CONNS)) $((2 * per_run))
		fi
	done
fi

# expect_failure NAME KIND MP-LOAD-ARGS...: mp-load must exit 1 and report
# failures of KIND.
expect_failure() {
	local name=$1 kind=$2 rc
	shift 2
	"$LOAD" --port "$port" --ops 8 --conns 4 --threads 2 "$@" \
		>"$TMP/load.out" 2>"$TMP/load.err"
	rc=$?
	if [ "$rc" -eq 1 ] && grep -Eq "^FAILURES: .* $kind=[1-9]" "$TMP/load.err"; then
		pass "$name: exit 1, $(grep '^FAILURES' "$TMP/load.err")"
	else
		fail "$name: want exit 1 with $kind failures, got exit $rc: $(cat "$TMP/load.err")"
	fi
}

# Only the silent server needs a short --timeout (timing out is what it
# tests); the others answer at once, and a short one would turn a late answer
# on a busy machine into a timeout instead of the failure under test.
for fault in mismatch:mismatch short:short_read reset:reset silent:timeout; do
	tmo=10
	[ "${fault%:*}" = silent ] && tmo=0.5
	if start "mp-badsrv ${fault%:*}" "$BADSRV" --fault "${fault%:*}"; then
		for proto in echo http; do
			for mode in short persistent; do
				expect_failure "bad server ${fault%:*} $proto $mode" \
					"${fault#*:}" --proto $proto --mode $mode --timeout $tmo
			done
		done
		kill "$pid"
		wait "$pid" 2>/dev/null
		pid=
	fi
done
port=$((port + 1))		# nothing listens here
expect_failure "closed port" connect --proto echo --mode short

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
