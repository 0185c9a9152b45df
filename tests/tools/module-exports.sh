#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# What code that can be built as a module (IPv6, tcp_diag, ...) uses of our
# symbols (kernel/src) is exported: kernel/check-exports.py on the test
# kernel's objects.  Everything is built in there, so its modpost cannot see
# a missing export; Debian's config (make kernel-deb) and make kernel-modular
# would.  Then the same check on a copy of those objects with our exports
# stripped (objcopy) must fail, naming every symbol the first run saw used.
set -eu
top=$(realpath "$(dirname "$0")/../..")
obj=$top/build/kbuild-test
check=$top/kernel/check-exports.py
fail() { echo "FAIL: $*" >&2; exit 1; }

[ -f "$obj/vmlinux.o" ] || fail "no test kernel objects in $obj: build them first (make kernel-test)"
out=$("$check" "$obj" 2>&1) || { echo "$out" >&2; fail "a symbol of ours is used by code that can be a module but is not exported"; }
echo "$out"
mapfile -t used < <(sed -n 's/^check-exports: ok: .* uses \([^ ,]*\), exported$/\1/p' <<<"$out" | sort -u)
# tcp_diag and IPv6 use some today; none found means the check sees nothing.
[ ${#used[@]} -gt 0 ] || fail "no use of our symbols from code that can be a module found: the check is blind"

# The check must be able to fail: the same objects, ours without exports.
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cp -rs "$obj/." "$t/"
while IFS= read -r src; do
	o=${src%.*}.o
	[ -f "$obj/$o" ] || continue
	rm -f "$t/$o"
	objcopy --wildcard --strip-symbol='__export_symbol_*' --strip-symbol='__ksymtab_*' "$obj/$o" "$t/$o"
done < <(cd "$top/kernel/src" && find . -name '*.[cS]' | sed 's|^\./||')
if bad=$("$check" "$t" 2>&1); then
	fail "the check passed on objects with our exports stripped: $bad"
fi
for s in "${used[@]}"; do
	grep -q "uses $s, which .* does not export" <<<"$bad" || fail "stripped export of $s not reported: $bad"
done
echo "module-exports: ok (${used[*]} exported; stripped, the check fails)"
