#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The key-value server's tests (tests/tools/kv.sh: protocol conformance,
# libmemcached-tools, eviction) with kv-mp on /dev/megapipe, the kernel
# backend: lightweight sockets, CPU-masked listener, the channel's own
# read/write/disconnect paths under a real protocol.  No valgrind here.
set -u
[ -e /dev/megapipe ] || { echo "no /dev/megapipe: kernel without CONFIG_MEGAPIPE"; exit 1; }
exec env KV_BACKEND=kernel KV_VALGRIND=0 "$(dirname "$(realpath "$0")")/../tools/kv.sh"
