#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# libmegapipe's own test suite on the kernel backend: every library test
# against /dev/megapipe (built by make tests: make -C libmegapipe tests),
# on the shared-memory rings (the library's default where the kernel has
# them) and again on the copy transport (MEGAPIPE_RING=0).
set -u
[ -e /dev/megapipe ] || { echo "no /dev/megapipe: kernel without CONFIG_MEGAPIPE"; exit 1; }
# The randomized stress test at 1,024 connections (4 channels on the VM's
# CPUs, each with its listener CPU mask; 256 client connections each, on
# lightweight sockets from mp_connect).  2,048 ran past the test's 40 s
# deadline once in a loaded make test (1,589 done).
export STRESS_THREADS=4 STRESS_CONNS=256
run=$(dirname "$(realpath "$0")")/../../libmegapipe/test/run-tests.sh
rc=0
echo "# rings (default)"
"$run" --backend kernel || rc=1
echo "# copies (MEGAPIPE_RING=0)"
MEGAPIPE_RING=0 STRESS_CONNS=64 "$run" --backend kernel || rc=1
exit $rc
