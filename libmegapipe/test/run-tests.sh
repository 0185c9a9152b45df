#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Run the libmegapipe test suite against one backend.
#
#   test/run-tests.sh [--backend epoll|kernel] [--valgrind] [TEST...]
#
# Runs every program in build/test/ (or the TESTs named) with
# MEGAPIPE_BACKEND set, each under a 60 s timeout (stress: 180 s), prints
# "ok"/"not ok" per program (with the failing checks), then "N passed,
# N failed", and exits non-zero on any failure.  Build first:
# make -C libmegapipe tests.
# The kernel backend needs a kernel with /dev/megapipe.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/build/test
backend=epoll
vg=()
while [ $# -gt 0 ]; do
	case $1 in
	--backend) backend=$2; shift 2 ;;
	--valgrind) vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite); shift ;;
	-h|--help) sed -n '4,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run-tests.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
case $backend in epoll|kernel) ;; *) echo "run-tests.sh: --backend epoll|kernel" >&2; exit 2 ;; esac
if [ "$backend" = kernel ] && [ ! -e /dev/megapipe ]; then
	echo "run-tests.sh: no /dev/megapipe: the kernel backend needs a kernel with the channel device" >&2
	exit 2
fi
if [ $# -gt 0 ]; then
	tests=("$@")
else
	tests=()
	for t in "$bin"/*; do
		[ -x "$t" ] && [ -f "$t" ] && tests+=("$(basename "$t")")
	done
fi
[ ${#tests[@]} -gt 0 ] || { echo "run-tests.sh: no tests in $bin (make tests)" >&2; exit 2; }

pass=0 fail=0
echo "# libmegapipe tests, backend $backend"
for t in "${tests[@]}"; do
	start=$(date +%s%N)
	case $t in
	stress) limit=180 ;;	# fails itself on 20 s without progress
	*) limit=60 ;;
	esac
	out=$(MEGAPIPE_BACKEND=$backend timeout $limit "${vg[@]}" "$bin/$t" 2>&1)
	rc=$?
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	checks=$(grep -c '^ok ' <<<"$out")
	if [ $rc = 0 ] && ! grep -q '^not ok' <<<"$out"; then
		pass=$((pass + 1))
		echo "ok - $t ($checks checks, $ms ms)"
	else
		fail=$((fail + 1))
		echo "not ok - $t (exit $rc, $ms ms)"
		grep -v '^ok ' <<<"$out" | tail -n 20 | sed 's/^/#   /'
	fi
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
