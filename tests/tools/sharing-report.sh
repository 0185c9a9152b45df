#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# report.py's summary of the cache-line transfer counter's output, on a
# hand-made file (no VM; the counter itself is tested in the VM by
# bench/insncount/sharing-selftest.sh, from run-suite).
exec "$(dirname "$0")/../../bench/insncount/sharing-report-test.sh"
