#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# libmegapipe on the host, with the epoll backend (no /dev/megapipe needed):
# the channel ABI header compiles as C90/C99 (-pedantic) and C++; the
# library builds -Werror clean; its whole test suite passes; "make install"
# gives a .so with its soname and symbol version, a static library, a
# pkg-config file, headers and man pages (each renders without warnings),
# and a program built with pkg-config runs against the installed library;
# examples/mp-echo serves mp-load (echo and http, short and persistent) with
# no errors and exact counts.  Loopback only; about 30 s.
set -u
top=$(realpath "$(dirname "$0")/../..")
lib=$top/libmegapipe
fail() { echo "FAIL: $*" >&2; exit 1; }
t=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -rf "$t"
}
trap cleanup EXIT
for c in gcc g++ groff pkg-config readelf objdump; do
	command -v $c >/dev/null || fail "$c not found (make deps installs groff-base, pkg-config)"
done

# --- the ABI header ---------------------------------------------------------
printf '#include <linux/megapipe.h>\nint main(void) { return MEGAPIPE_IOC_SUBMIT == 0; }\n' >"$t/h.c"
for std in c90 c99 c11; do
	gcc -std=$std -Wall -Wextra -pedantic -Werror -I"$top/include/uapi" -o "$t/h" "$t/h.c" ||
		fail "linux/megapipe.h does not compile with -std=$std -pedantic"
done
g++ -x c++ -std=c++11 -Wall -Wextra -pedantic -Werror -I"$top/include/uapi" -fsyntax-only "$t/h.c" ||
	fail "linux/megapipe.h does not compile as C++"
printf '#include <megapipe.h>\nint main(void) { return mp_version() == 0; }\n' >"$t/p.c"
gcc -std=c99 -Wall -Wextra -pedantic -Werror -I"$lib/include" -I"$top/include/uapi" -fsyntax-only "$t/p.c" ||
	fail "megapipe.h does not compile with -std=c99 -pedantic"
g++ -x c++ -std=c++11 -Wall -Wextra -pedantic -Werror -I"$lib/include" -I"$top/include/uapi" -fsyntax-only "$t/p.c" ||
	fail "megapipe.h does not compile as C++"

# --- build and test suite -----------------------------------------------------
make -s -C "$lib" all tests >"$t/build.log" 2>&1 || { cat "$t/build.log"; fail "libmegapipe build"; }
MEGAPIPE_BACKEND=epoll "$lib/test/run-tests.sh" --backend epoll || fail "libmegapipe test suite (epoll backend)"

# --- install ----------------------------------------------------------------------
make -s -C "$lib" install PREFIX="$t/usr" >"$t/install.log" 2>&1 || { cat "$t/install.log"; fail "make install"; }
so=$t/usr/lib/libmegapipe.so.1
[ -L "$so" ] && [ -L "$t/usr/lib/libmegapipe.so" ] && [ -f "$t/usr/lib/libmegapipe.a" ] || fail "installed libraries"
readelf -d "$so" | grep -q 'SONAME.*\[libmegapipe\.so\.1\]' || fail "soname"
objdump -T "$so" | grep -q 'LIBMEGAPIPE_1\.0.*mp_dispatch' || fail "symbol version LIBMEGAPIPE_1.0"
objdump -T "$so" | grep -q 'LIBMEGAPIPE_1\.1.*mp_set_user_data' || fail "symbol version LIBMEGAPIPE_1.1"
objdump -T "$so" | grep -q 'LIBMEGAPIPE_1\.2.*mp_setsockopt' || fail "symbol version LIBMEGAPIPE_1.2"
objdump -T "$so" | grep -q 'LIBMEGAPIPE_1\.3.*mp_poll' || fail "symbol version LIBMEGAPIPE_1.3"
# the header's version is the library's
v=$(sed -n 's/^VERSION[[:space:]]*:= *//p' "$lib/Makefile")
hmaj=$(sed -n 's/^#define LIBMEGAPIPE_VERSION_MAJOR[[:space:]]*//p' "$lib/include/megapipe.h")
hmin=$(sed -n 's/^#define LIBMEGAPIPE_VERSION_MINOR[[:space:]]*//p' "$lib/include/megapipe.h")
[ "${v%.*}" = "$hmaj.$hmin" ] || fail "header says $hmaj.$hmin, the library is $v"
if objdump -T "$so" | awk '$2 == "g" && $4 == ".text"' | grep -v ' mp_' | grep -q .; then
	fail "exported symbols other than mp_*"
fi
[ -f "$t/usr/include/megapipe.h" ] && [ -f "$t/usr/include/linux/megapipe.h" ] || fail "installed headers"
for p in "$lib"/man/*.[37]; do
	s=$(basename "$p"); sec=${s##*.}
	[ -f "$t/usr/share/man/man$sec/$s" ] || fail "man page $s not installed"
	# the installed copy, from its man directory: .so man3/... resolves
	w=$(cd "$t/usr/share/man" && LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "man$sec/$s" 2>&1) ||
		fail "man page $s: $w"
	[ -z "$w" ] || fail "man page $s: $w"
done
for f in mp_create mp_destroy mp_register mp_unregister mp_accept mp_read mp_write mp_writev \
	 mp_disconnect mp_connect mp_cancel mp_export mp_flush mp_dispatch mp_features \
	 mp_version mp_set_cookie mp_set_user_data mp_fd mp_provide_buffers mp_read_multishot \
	 mp_buffer mp_buffer_release mp_setsockopt mp_getsockopt mp_getsockname mp_getpeername; do
	[ -f "$lib/man/$f.3" ] || fail "no man page for $f"
done
cat >"$t/user.c" <<'C'
#include <megapipe.h>
#include <stdio.h>
int main(void)
{
	struct mp_channel *mp = mp_create(0, 0);
	struct mp_info info;

	if (!mp || mp_features(mp, &info))
		return 1;
	printf("%s %u\n", mp_version(), info.cq_entries);
	mp_destroy(mp);
	return 0;
}
C
export PKG_CONFIG_PATH=$t/usr/lib/pkgconfig
# shellcheck disable=SC2046
gcc -Wall -Werror $(pkg-config --cflags megapipe) -o "$t/user" "$t/user.c" $(pkg-config --libs megapipe) ||
	fail "building against the installed library with pkg-config"
out=$(MEGAPIPE_BACKEND=epoll LD_LIBRARY_PATH=$t/usr/lib "$t/user") || fail "program using the installed library"
[ "$out" = "$v 1024" ] || fail "program output: $out (want $v 1024: mp_version() is the Makefile's VERSION)"
ldd "$t/user" | grep -q "libmegapipe.so.1 => $t/usr/lib" 2>/dev/null ||
	LD_LIBRARY_PATH=$t/usr/lib ldd "$t/user" | grep -q "libmegapipe.so.1 => $t/usr/lib" ||
	fail "the program does not use the installed libmegapipe.so.1"

# --- examples/mp-echo against mp-load ------------------------------------------------------
make -s -C "$top/examples" >"$t/ex.log" 2>&1 || { cat "$t/ex.log"; fail "examples build"; }
make -s -C "$top/bench/loadgen" >"$t/lg.log" 2>&1 || { cat "$t/lg.log"; fail "mp-load build"; }
load=$top/bench/loadgen/mp-load
port=$(( 19400 + RANDOM % 500 ))
# multishot reads from a buffer ring (the default), then one read at a time
for run in "echo" "http" "echo --single" "http --single"; do
	read -r proto single <<<"$run"
	port=$((port + 1))
	: >"$t/srv.out"
	MEGAPIPE_BACKEND=epoll "$top/examples/mp-echo" --port $port --threads 2 --proto $proto \
		$single >"$t/srv.out" 2>"$t/srv.err" &
	pid=$!
	for ((i = 0; i < 100; i++)); do
		grep -q "^ready mp-echo port $port threads 2" "$t/srv.out" && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	grep -q "^ready" "$t/srv.out" || fail "mp-echo --proto $proto: no ready line: $(cat "$t/srv.err")"
	"$load" --port $port --proto $proto --mode short --ops 1000 --conns 20 --threads 2 --timeout 5 ||
		fail "mp-load short $proto against mp-echo"
	"$load" --port $port --proto $proto --mode persistent --ops 2000 --conns 20 --threads 2 --timeout 5 ||
		fail "mp-load persistent $proto against mp-echo"
	kill -TERM $pid
	wait $pid || fail "mp-echo --proto $proto exit status $?"
	pid=
	want="stats accepted 1020 requests 3000 errors 0"
	grep -qx "$want" "$t/srv.out" || fail "mp-echo $proto: $(tail -n 1 "$t/srv.out"), want '$want'"
done
echo "libmegapipe: ok"
