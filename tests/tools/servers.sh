#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The full self-test of the baseline servers and the load generator (wrk,
# variants, IPv6, fault injection proving mp-load detects every kind of
# failure), on the host: it tests our programs, not the kernel.
exec "$(dirname "$0")/../../bench/servers/selftest.sh"
