#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# examples/kv (the memcached-protocol key-value server, docs/kv.md) on the
# host, loopback: both designs, kv-epoll and kv-mp (libmegapipe's epoll
# backend here), each with 2 threads:
#   - the protocol conformance test (tests/tools/kv/kv_conform.py): every
#     command, multi-key get, gets/cas, noreply, incr/decr edge cases,
#     exptime, errors, oversize values, pipelining split at every byte,
#     garbage and overlong lines, output back-pressure, concurrent clients;
#   - Debian's libmemcached-tools round-tripping files (memccp, memccat,
#     memcrm, memcexist, memcflush, memcstat);
#   - eviction and bounded memory with --memory 1 --shards 1;
#   - SIGTERM: exit 0 and a "stats" line;
# then the subset of the conformance test that real memcached must pass too
# (checks the test's expectations against memcached itself), and, with
# KV_VALGRIND=1 (or when valgrind is installed and KV_VALGRIND is unset),
# both servers under valgrind memcheck for the fast part of the test.
# About 30 s (a minute more with valgrind).
set -u
top=$(realpath "$(dirname "$0")/../..")
here=$top/tests/tools/kv
fail() { echo "FAIL: $*" >&2; exit 1; }
t=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$t"
}
trap cleanup EXIT
for c in python3 memccp memccat memcrm memcexist memcflush memcstat; do
	command -v $c >/dev/null || fail "$c not found (make deps installs python3, libmemcached-tools)"
done

make -s -C "$top/examples" >"$t/build.log" 2>&1 || { cat "$t/build.log"; fail "examples build"; }
port=$((19900 + RANDOM % 2000))

# start NAME ARGS...: run examples/kv/NAME on a fresh port, wait for "ready"
start() {
	local name=$1 i
	shift
	port=$((port + 1))
	: >"$t/srv.out"
	"${wrap[@]}" "$top/examples/kv/$name" --addr 127.0.0.1 --port $port "$@" \
		>"$t/srv.out" 2>"$t/srv.err" &
	pid=$!
	for ((i = 0; i < 300; i++)); do
		grep -q "^ready $name port $port " "$t/srv.out" && return 0
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	fail "$name $*: no ready line: $(cat "$t/srv.err")"
}

# stop NAME: SIGTERM, exit status 0, a stats line
stop() {
	kill -TERM $pid
	wait $pid
	local rc=$?
	pid=
	[ $rc = 0 ] || fail "$1: exit status $rc on SIGTERM: $(tail -n 5 "$t/srv.err")"
	grep -qE '^stats accepted [0-9]+ requests [0-9]+ errors [0-9]+$' "$t/srv.out" ||
		fail "$1: no stats line: $(cat "$t/srv.out")"
}

conform() { # NAME ARGS for kv_conform.py
	local name=$1
	shift
	local pidopt=(--pid $pid)
	[ ${#wrap[@]} = 0 ] || pidopt=()	# valgrind's RSS is not the server's
	python3 "$here/kv_conform.py" --port $port "${pidopt[@]}" "$@" >"$t/conform.out" 2>&1 ||
		{ grep -v '^ok' "$t/conform.out"; fail "$name: conformance test"; }
	grep -q '^ok' "$t/conform.out" || fail "$name: conformance test ran nothing"
}

tools() { # NAME: libmemcached-tools round trips
	local name=$1 s=--servers=127.0.0.1:$port f
	mkdir -p "$t/files" "$t/back"
	(
		cd "$t/files" || exit 1
		: >empty
		printf x >one
		printf 'line one\r\nEND\r\n' >crlf
		head -c 100000 /dev/urandom >rand100k
		head -c 1000000 /dev/urandom >rand1m
		seq 1 50000 >numbers
	)
	(cd "$t/files" && memccp "$s" --flag=77 --expire=0 empty one crlf rand100k rand1m numbers) ||
		fail "$name: memccp"
	for f in "$t"/files/*; do
		f=$(basename "$f")
		memcexist "$s" "$f" || fail "$name: memcexist $f after memccp"
		memccat "$s" --file="$t/back/$f" "$f" >/dev/null || fail "$name: memccat $f"
		cmp -s "$t/files/$f" "$t/back/$f" || fail "$name: memccat $f: not what memccp stored"
	done
	memccat "$s" --flag one | grep -q '77' || fail "$name: memccat --flag: flags not kept"
	memcrm "$s" one crlf || fail "$name: memcrm"
	memccat "$s" one >/dev/null 2>&1 && fail "$name: memccat of a removed key succeeds"
	memcexist "$s" crlf 2>/dev/null && fail "$name: memcexist of a removed key succeeds"
	memccat "$s" --file="$t/back/numbers2" numbers >/dev/null && cmp -s "$t/files/numbers" "$t/back/numbers2" ||
		fail "$name: memcrm removed other keys"
	memcstat "$s" | grep -q 'curr_items: [1-9]' || fail "$name: memcstat"
	memcflush "$s" || fail "$name: memcflush"
	memcexist "$s" numbers 2>/dev/null && fail "$name: memcexist after memcflush"
	# a file over the 1 MiB item limit is refused, and nothing is stored
	head -c 1100000 /dev/zero >"$t/files/toobig"
	(cd "$t/files" && memccp "$s" toobig) >/dev/null 2>&1 && fail "$name: memccp of a 1.1 MB file succeeds"
	memcexist "$s" toobig 2>/dev/null && fail "$name: too large a file stored"
	rm -rf "$t/files" "$t/back"
}

# KV_BACKEND=kernel: kv-mp on /dev/megapipe (tests/scripts/kv_device.sh
# runs this in the test VM); default the epoll backend.
backend=${KV_BACKEND:-epoll}
wrap=()
for name in kv-epoll kv-mp; do
	export MEGAPIPE_BACKEND=$backend
	start $name --threads 2
	if [ $name = kv-mp ]; then
		grep -q "backend $backend" "$t/srv.err" ||
			fail "kv-mp does not run on the $backend backend: $(cat "$t/srv.err")"
	fi
	conform $name
	tools $name
	stop $name
	# 1 MB in one shard: exact LRU order, and the limit holds
	start $name --threads 2 --memory 1 --shards 1
	conform $name --only eviction,memory_bounded
	stop $name
	grep -q "store 1 MB, 1 shard," "$t/srv.err" || fail "$name: store line: $(cat "$t/srv.err")"
	# a store wish of 64 shards, 8 MB: lowered so a shard holds two 1 MiB items
	start $name --threads 1 --memory 8 --shards 64
	grep -q "store 8 MB, 2 shards," "$t/srv.err" || fail "$name: shard count: $(cat "$t/srv.err")"
	conform $name --only set_get,memory_bounded
	stop $name
done
unset MEGAPIPE_BACKEND

# bad options
"$top/examples/kv/kv-epoll" --memory 0 >/dev/null 2>&1
[ $? = 2 ] || fail "kv-epoll --memory 0 must exit 2"
"$top/examples/kv/kv-mp" --max-item 1x >/dev/null 2>&1
[ $? = 2 ] || fail "kv-mp --max-item 1x must exit 2"

# The test's expectations against real memcached (the subset it shares).
if command -v memcached >/dev/null; then
	port=$((port + 1))
	memcached -l 127.0.0.1 -p $port -U 0 -m 64 -t 2 -u nobody >"$t/mc.log" 2>&1 &
	pid=$!
	for ((i = 0; i < 50; i++)); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && break
		sleep 0.1
	done
	python3 "$here/kv_conform.py" --port $port --reference >"$t/conform.out" 2>&1 ||
		{ grep -v '^ok' "$t/conform.out"; fail "memcached fails the reference subset: the test expects what memcached does not"; }
	kill $pid; wait $pid 2>/dev/null; pid=
else
	echo "kv: memcached not installed, reference check skipped"
fi

# valgrind: no invalid access, no leak at exit
vg=${KV_VALGRIND:-}
[ -z "$vg" ] && command -v valgrind >/dev/null && vg=1
if [ "$vg" = 1 ]; then
	wrap=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
	      --log-file="$t/vg.log")
	for name in kv-epoll kv-mp; do
		export MEGAPIPE_BACKEND=epoll
		start $name --threads 2 --memory 2
		conform $name --only set_get,multi_get,gets_cas,add_replace_append_prepend,delete,incr_decr,noreply,errors,too_large,line_too_long,pipeline_whole,pipeline_random_splits,pipeline_many,concurrent_clients,memory_bounded
		kill -TERM $pid
		wait $pid
		rc=$?
		pid=
		[ $rc = 0 ] || { cat "$t/vg.log"; fail "$name under valgrind: exit status $rc"; }
		[ -s "$t/vg.log" ] && { cat "$t/vg.log"; fail "$name: valgrind reports"; }
	done
	wrap=()
fi
echo "kv: ok"
