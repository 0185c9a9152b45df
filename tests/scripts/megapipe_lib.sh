#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# libmegapipe's own test suite on the kernel backend: every library test
# against /dev/megapipe (built by make tests: make -C libmegapipe tests).
set -u
[ -e /dev/megapipe ] || { echo "no /dev/megapipe: kernel without CONFIG_MEGAPIPE"; exit 1; }
# The randomized stress test at 1,024 connections (4 channels on the VM's
# CPUs, each with its listener CPU mask; 256 client connections each, on
# lightweight sockets from mp_connect).  2,048 ran past the test's 40 s
# deadline once in a loaded make test (1,589 done).
export STRESS_THREADS=4 STRESS_CONNS=256
exec "$(dirname "$(realpath "$0")")/../../libmegapipe/test/run-tests.sh" --backend kernel
