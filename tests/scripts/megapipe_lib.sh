#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# libmegapipe's own test suite on the kernel backend: every library test
# against /dev/megapipe (built by make tests: make -C libmegapipe tests).
set -u
[ -e /dev/megapipe ] || { echo "no /dev/megapipe: kernel without CONFIG_MEGAPIPE"; exit 1; }
# The randomized stress test at 2,048 connections (4 channels on the VM's
# CPUs, each with its listener CPU mask; 512 client connections each, on
# lightweight sockets from mp_connect).
export STRESS_THREADS=4 STRESS_CONNS=512
exec "$(dirname "$(realpath "$0")")/../../libmegapipe/test/run-tests.sh" --backend kernel
