#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# examples/mp-http (docs/http.md) on loopback, driven by examples/http-probe
# (raw requests in, parsed responses out; no curl or python3 needed):
# keep-alive over several requests, pipelining (in one write, and split a
# byte at a time), HEAD without a body, 404/405/400/413/414/431/501/505,
# request bodies dropped without a desync, Connection: close and HTTP/1.0
# closing, bodies equal to the files under --root, the generated body of
# --size bytes, mp-load against it, and the ready/stats contract with exact
# counts.  On the kernel backend where /dev/megapipe exists (the test VM),
# and always on libmegapipe's epoll backend; each with multishot reads and
# with --single.  HTTP_BACKENDS="epoll" (etc.) picks the backends.
set -u
top=$(realpath "$(dirname "$0")/../..")
mphttp=$top/examples/mp-http
probe=$top/examples/http-probe
load=$top/bench/loadgen/mp-load
t=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$t"
}
trap cleanup EXIT
fatal() { echo "FAIL: $*"; exit 1; }
# (checks run in pipelines, in subshells: failures are counted in a file)
fail() { echo "FAIL: $mode: $*"; echo >>"$t/failed"; }

make -s -C "$top/examples" >"$t/build.log" 2>&1 || { cat "$t/build.log"; fatal "examples build"; }
make -s -C "$top/bench/loadgen" >"$t/build.log" 2>&1 || { cat "$t/build.log"; fatal "mp-load build"; }

if [ -n "${HTTP_BACKENDS:-}" ]; then
	backends=$HTTP_BACKENDS
elif [ -e /dev/megapipe ]; then
	backends="kernel epoll"
else
	backends=epoll
	echo "# no /dev/megapipe: the epoll backend only"
fi

# The document root: the benchmark's 64-byte body as index.html (what
# bench/nginx serves), binary data, an empty file; and what must not be
# served: a link out of the root, a subdirectory, a hidden file.
www=$t/www
mkdir -p "$www/sub"
printf '%s\n' '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.' >"$www/index.html"
head -c 300000 /dev/urandom >"$www/rand.bin"
: >"$www/empty.txt"
ln -s /etc/passwd "$www/passwd"
echo secret >"$www/.hidden"
echo inside >"$www/sub/file"

port=$((20000 + RANDOM % 4000))

# start ARGS...: mp-http on a fresh port, 2 threads; wait for "ready".
start() {
	local i
	port=$((port + 1))
	: >"$t/srv.out"
	: >"$t/srv.err"
	MEGAPIPE_BACKEND=$backend "$mphttp" --addr 127.0.0.1 --port $port --threads 2 \
		"$@" >"$t/srv.out" 2>"$t/srv.err" &
	pid=$!
	: >"$t/seen"
	for ((i = 0; i < 600; i++)); do
		grep -q "^ready mp-http port $port threads 2$" "$t/srv.out" && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	grep -q "^ready mp-http port $port threads 2$" "$t/srv.out" ||
		fatal "$mode: mp-http $*: no ready line: $(cat "$t/srv.err")"
	grep -qx "mp-http: backend $backend" "$t/srv.err" ||
		fatal "$mode: not on the $backend backend: $(cat "$t/srv.err")"
}

# What the server was sent, for its stats line: "conn N" connections,
# "resp N STATUS" responses.
seen() { echo "$*" >>"$t/seen"; }

# stop: SIGTERM, exit 0, the stats line with the counts seen by the
# probes (errors: the responses that close for a bad request).
stop() {
	local rc want
	want=$(awk '$1 == "conn" { c += $2 } $1 == "resp" { r += $2 }
		    $1 == "resp" && $3 ~ /^(400|413|414|431|501|505)$/ { e += $2 }
		    END { printf "stats accepted %d requests %d errors %d", c, r, e }' "$t/seen")
	kill -TERM $pid
	wait $pid
	rc=$?
	pid=
	[ $rc = 0 ] || fail "exit status $rc on SIGTERM: $(tail -n 3 "$t/srv.err")"
	grep -qx "$want" "$t/srv.out" || fail "stats: '$(tail -n 1 "$t/srv.out")', want '$want'"
}

# req LINE...: the lines of a request head, CRLF-terminated; the last
# argument "" makes the empty line.
req() { printf '%s\r\n' "$@"; }

# check NAME WANT [http-probe options]: the request on stdin; WANT is
# http-probe's output.  A connection that must close may take its time;
# one that stays open is given 300 ms to show it does not close.
check() {
	local name=$1 want=$2 got wait=300
	shift 2
	[[ $want == *closed ]] && wait=10000
	got=$("$probe" -w $wait "$@" 127.0.0.1 $port 2>&1)
	seen conn 1
	while read -r _ status _; do
		[[ $status =~ ^[0-9]{3}$ ]] && seen resp 1 "$status"
	done <<<"$got"
	if [ "$got" != "$want" ]; then
		fail "$name"
		echo "  want: ${want//$'\n'/ | }"
		echo "  got:  ${got//$'\n'/ | }"
		return 1
	fi
	return 0
}

ok64='length 64 connection keep-alive'
get() { req "GET $1 HTTP/1.1" "Host: test" ""; }

run_root() {
	start --root "$www" "$@"
	grep -q "serving 3 files" "$t/srv.err" || fail "--root: $(cat "$t/srv.err")"

	# several requests on one connection, each sent after the last answer
	{ get /; get /; get /; } | check "keep-alive, one at a time" \
		$'1 200 '"$ok64"$'\n2 200 '"$ok64"$'\n3 200 '"$ok64"$'\nopen' -n 3 -c 30 -g 100

	# pipelined in one write, answered in order; HEAD has no body (the
	# next response would not parse if it had one)
	{ get /; req "HEAD /rand.bin HTTP/1.1" "Host: test" ""; get /rand.bin; get /empty.txt; get /index.html; } |
		check "pipelined, bodies" $'1 200 '"$ok64"$'\n2 200 length 300000 connection keep-alive\n3 200 length 300000 connection keep-alive\n4 200 length 0 connection keep-alive\n5 200 '"$ok64"$'\nopen' \
		-n 5 -H 2 -b "$t" &&
		{ cmp -s "$t/1" "$www/index.html" && cmp -s "$t/3" "$www/rand.bin" && cmp -s "$t/4" "$www/empty.txt" &&
		  cmp -s "$t/5" "$www/index.html" || fail "bodies differ from the files"; }

	# a byte at a time, across two requests
	{ get /index.html; req "HEAD / HTTP/1.1" "Host: test" ""; } |
		check "split byte by byte" $'1 200 '"$ok64"$'\n2 200 '"$ok64"$'\nopen' -n 2 -H 2 -c 1 -g 1

	# pipelined requests whose replies outgrow every buffer: all of
	# them, in order, while the client reads
	for ((i = 0; i < 30; i++)); do get /rand.bin; done >"$t/many"
	{ for ((i = 1; i <= 30; i++)); do echo "$i 200 length 300000 connection keep-alive"; done; echo open; } >"$t/many.want"
	check "30 pipelined 300 kB replies" "$(cat "$t/many.want")" -n 30 <"$t/many"

	# what is not there
	{ get /nope; get /sub; get /sub/file; get /passwd; get /.hidden; get /../index.html; get /%2e%2e/etc/passwd; } |
		check "404" "$(for i in 1 2 3 4 5 6 7; do echo "$i 404 length 14 connection keep-alive"; done; echo open)" -n 7
	{ req "HEAD /nope HTTP/1.1" "Host: test" ""; get /; } |
		check "HEAD 404" $'1 404 length 14 connection keep-alive\n2 200 '"$ok64"$'\nopen' -n 2 -H 1
	# targets: a query, percent-escapes, the absolute form
	{ get "/index.html?x=1"; get "/index%2Ehtml"; req "GET http://test/rand.bin HTTP/1.1" "Host: test" "";
	  req "GET http://test HTTP/1.1" "Host: test" ""; } |
		check "targets" $'1 200 '"$ok64"$'\n2 200 '"$ok64"$'\n3 200 length 300000 connection keep-alive\n4 200 '"$ok64"$'\nopen' -n 4

	# other methods: 405 with Allow; a request body is dropped, no desync
	{ req "POST / HTTP/1.1" "Host: test" "Content-Length: 11" ""; printf 'GET / HTTP/'; get /; } |
		check "405, body dropped" $'1 405 length 23 connection keep-alive allow GET, HEAD\n2 200 '"$ok64"$'\nopen' -n 2
	{ req "DELETE / HTTP/1.1" "Host: test" ""; req "get / HTTP/1.1" "Host: test" ""; } |
		check "405" $'1 405 length 23 connection keep-alive allow GET, HEAD\n2 405 length 23 connection keep-alive allow GET, HEAD\nopen' -n 2
	# a GET's body too, split from its head
	{ req "GET / HTTP/1.1" "Host: test" "Content-Length: 5" ""; printf 'abcde'; get /; } |
		check "GET with a body" $'1 200 '"$ok64"$'\n2 200 '"$ok64"$'\nopen' -n 2 -c 20 -g 20

	# the connection ends: Connection: close (what follows is not
	# answered), HTTP/1.0, unless it asks to keep it; the peer's close
	# after pipelined requests (all are answered first)
	{ req "GET / HTTP/1.1" "Host: test" "Connection: close" ""; get /; } |
		check "Connection: close" $'1 200 length 64 connection close\nclosed' -n 1
	req "GET / HTTP/1.0" "" | check "HTTP/1.0" $'1 200 length 64 connection close\nclosed' -n 1
	{ req "GET / HTTP/1.0" "Connection: keep-alive" ""; req "GET / HTTP/1.0" ""; } |
		check "HTTP/1.0 keep-alive" $'1 200 '"$ok64"$'\n2 200 length 64 connection close\nclosed' -n 2
	{ get /; get /rand.bin; get /; } |
		check "half-close after pipelining" $'1 200 '"$ok64"$'\n2 200 length 300000 connection keep-alive\n3 200 '"$ok64"$'\nclosed' -n 3 -s

	# bad requests: answered, then closed
	local b400=$'1 400 length 16 connection close\nclosed'
	req "GET / HTTP/1.1" "" | check "400 no Host" "$b400" -n 1
	req "GET / HTTP/1.1" "Host: a" "Host: b" "" | check "400 two Hosts" "$b400" -n 1
	printf 'GET / HTTP/1.1\nHost: test\n\n' | check "400 bare LF" "$b400" -n 1
	req "GET /  HTTP/1.1" "Host: test" "" | check "400 two spaces" "$b400" -n 1
	req "GET / HTTP/1.1 extra" "Host: test" "" | check "400 request line" "$b400" -n 1
	req "GET / HTTP/1" "Host: test" "" | check "400 version" "$b400" -n 1
	req "GET / HTTP/1.1" "Host : test" "" | check "400 blank before colon" "$b400" -n 1
	req "GET / HTTP/1.1" "Host: test" " folded" "" | check "400 folded field" "$b400" -n 1
	req "GET / HTTP/1.1" "Host: test" "Content-Length: 1x" "" | check "400 Content-Length" "$b400" -n 1
	req "GET / HTTP/1.1" "Host: test" "Content-Length: 1" "Content-Length: 2" "" "ab" |
		check "400 two Content-Lengths" "$b400" -n 1
	{ get /; req "GET / HTTP/1.1" "Host: te"$'\x01'"st" ""; get /; } |
		check "400 after a good one" $'1 200 '"$ok64"$'\n2 400 length 16 connection close\nclosed' -n 2
	req "GET / HTTP/2.0" "Host: test" "" | check "505 HTTP/2.0" $'1 505 length 31 connection close\nclosed' -n 1
	req "GET / HTTP/3.0" "Host: test" "" | check "505 HTTP/3.0" $'1 505 length 31 connection close\nclosed' -n 1
	req "POST / HTTP/1.1" "Host: test" "Transfer-Encoding: chunked" "" "5" "hello" "0" "" |
		check "501 chunked" $'1 501 length 20 connection close\nclosed' -n 1
	req "POST / HTTP/1.1" "Host: test" "Content-Length: 2000000" "" |
		check "413" $'1 413 length 22 connection close\nclosed' -n 1
	{ printf 'GET /%09000d HTTP/1.1\r\n' 0; req "Host: test" ""; } |
		check "414" $'1 414 length 17 connection close\nclosed' -n 1
	{ req "GET / HTTP/1.1" "Host: test"; for ((i = 0; i < 300; i++)); do req "X-Padding-$i: 0123456789abcdef"; done; req ""; } |
		check "431" $'1 431 length 36 connection close\nclosed' -n 1
	# a head of just under the limit is fine
	{ req "GET / HTTP/1.1" "Host: test"; printf 'X: %08100d\r\n\r\n' 0; } |
		check "8 KiB head" $'1 200 '"$ok64"$'\nopen' -n 1
	stop
}

run_generated() {
	local size=$1
	shift
	start --size "$size" "$@"
	{ get /; get /any/path; } | check "generated body at any path" \
		"$(printf '1 200 length %d connection keep-alive\n2 200 length %d connection keep-alive\nopen' "$size" "$size")" \
		-n 2 -b "$t"
	for ((i = 0; i < size / 64 + 1; i++)); do
		printf '%s\n' '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.'
	done | head -c "$size" >"$t/gen.want"
	cmp -s "$t/1" "$t/gen.want" && cmp -s "$t/2" "$t/gen.want" ||
		fail "--size $size: not the benchmark's body"
	if [ "$size" = 64 ]; then
		# the benchmark's load generator checks every response's body
		"$load" --port $port --proto http --mode short --ops 200 --warmup 0 --conns 8 \
			--threads 2 --timeout 10 >/dev/null 2>"$t/load.err" ||
			fail "mp-load short: $(cat "$t/load.err")"
		"$load" --port $port --proto http --mode persistent --ops 400 --warmup 0 --conns 8 \
			--threads 2 --timeout 10 >/dev/null 2>"$t/load.err" ||
			fail "mp-load persistent: $(cat "$t/load.err")"
		seen conn $((200 + 8))
		seen resp $((200 + 400)) 200
	fi
	stop
}

for backend in $backends; do
	for reads in "" --single; do
		mode="$backend${reads:+ $reads}"
		run_root $reads
		run_generated 64 $reads
		run_generated 1000 $reads
	done
done

# bad options are refused with a message
"$mphttp" --proto echo >/dev/null 2>"$t/err" && fail "--proto echo accepted"
grep -q "http only" "$t/err" || fail "--proto echo: '$(cat "$t/err")'"
"$mphttp" --root "$t/none" --port $((port + 1)) >/dev/null 2>"$t/err" && fail "a missing --root accepted"
grep -q -- "--root $t/none" "$t/err" || fail "missing --root: '$(cat "$t/err")'"
mkdir "$t/empty"
"$mphttp" --root "$t/empty" --port $((port + 1)) >/dev/null 2>"$t/err" && fail "an empty --root accepted"
grep -q "no regular file" "$t/err" || fail "empty --root: '$(cat "$t/err")'"

if [ -s "$t/failed" ]; then
	echo "http_mp: $(wc -l <"$t/failed") checks failed"
	exit 1
fi
echo "http_mp: ok ($backends)"
