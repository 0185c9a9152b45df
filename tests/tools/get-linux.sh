#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A pinned kernel version that Debian no longer serves stops the build with a
# message naming the pinned and the available versions, and extracts nothing.
set -eu
top=$(realpath "$(dirname "$0")/../..")
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
if out=$("$top/scripts/get-linux.sh" 6.12.0-0~megapipe-test "$t/linux-pristine" 2>&1); then
	echo "FAIL: an unserved version succeeded" >&2; exit 1
fi
grep -q 'linux-source-6.12 6.12.0-0~megapipe-test (the version pinned in the Makefile) is not served' <<<"$out" ||
	{ echo "FAIL: pinned version not named: $out" >&2; exit 1; }
grep -Eq 'available: .*6\.12\.' <<<"$out" || { echo "FAIL: available versions not listed: $out" >&2; exit 1; }
[ ! -e "$t/linux-pristine" ] || { echo "FAIL: something was extracted" >&2; exit 1; }
echo "get-linux: ok"
