#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The baseline servers (epoll shared listener, epoll SO_REUSEPORT, io_uring)
# and the load generator work on this kernel: zero errors, exact request
# counts, clean shutdown (bench/servers/selftest.sh QUICK=1, with
# counts scaled down for the emulated test VM; the full self-test, with wrk
# and fault injection, runs on the host as tests/tools/servers.sh).
cd "$(dirname "$0")/../.." || exit 1
QUICK=1 OPS=${OPS:-200} WARMUP=${WARMUP:-20} CONNS=${CONNS:-20} exec bench/servers/selftest.sh
