#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Test kernel/check-config.sh: a fragment symbol that Kconfig dropped or
# changed is reported by name; a config that honours the fragment passes.
set -eu
top=$(realpath "$(dirname "$0")/../..")
check=$top/kernel/check-config.sh
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

printf 'CONFIG_A=y\nCONFIG_S="x"\n# CONFIG_C is not set\n' > "$t/frag"
printf 'CONFIG_A=y\nCONFIG_S="x"\n# CONFIG_C is not set\nCONFIG_D=y\n' > "$t/good"
printf 'CONFIG_S="y"\nCONFIG_C=y\n' > "$t/bad"
"$check" "$t/good" "$t/frag" || fail "a matching config was rejected"
if out=$("$check" "$t/bad" "$t/frag" 2>&1); then fail "a config missing CONFIG_A passed"; fi
for s in CONFIG_A CONFIG_S CONFIG_C; do
	grep -q "$s" <<<"$out" || fail "$s not named in: $out"
done
echo "check-config: ok"
