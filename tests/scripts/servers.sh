#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The baseline servers (epoll shared listener, epoll SO_REUSEPORT, io_uring)
# and the load generator work on this kernel: zero errors, exact request
# counts, wrk without errors, clean shutdown (bench/servers/selftest.sh, with
# counts scaled down for the emulated test VM).
cd "$(dirname "$0")/../.." || exit 1
OPS=${OPS:-300} WARMUP=${WARMUP:-30} CONNS=${CONNS:-20} exec bench/servers/selftest.sh
