#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# libmegapipe's own test suite on the kernel backend: every library test
# against /dev/megapipe (built by make tests: make -C libmegapipe tests).
set -u
[ -e /dev/megapipe ] || { echo "no /dev/megapipe: kernel without CONFIG_MEGAPIPE"; exit 1; }
exec "$(dirname "$(realpath "$0")")/../../libmegapipe/test/run-tests.sh" --backend kernel
