#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Test kernel/apply-series.sh on a toy tree: patches apply in order, a second
# run touches nothing, a changed patch is reverted and re-applied without
# touching the patches before it, kernel/src files are copied in and removed,
# and a patch that does not apply stops with its name.
set -eu
top=$(realpath "$(dirname "$0")/../..")
apply=$top/kernel/apply-series.sh
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$t/tree" "$t/k/patches" "$t/k/src/net/mp"
printf 'a\nb\nc\n' > "$t/tree/one"
printf 'x\ny\nz\n' > "$t/tree/two"
mkpatch() { # mkpatch NAME FILE OLD NEW
	(cd "$t/tree" && sed "s/^$3\$/$4/" "$2" > "$t/new" &&
		diff -u --label "a/$2" --label "b/$2" "$2" "$t/new" > "$t/k/patches/$1" || true)
}
mkpatch 0001-one.patch one b B
mkpatch 0002-two.patch two y Y
printf '0001-one.patch\n0002-two.patch\n' > "$t/k/patches/series"
echo 'int mp;' > "$t/k/src/net/mp/mp.c"
export MP_KERNEL_DIR=$t/k

"$apply" "$t/tree" >/dev/null
grep -qx B "$t/tree/one" || fail "patch 1 not applied"
grep -qx Y "$t/tree/two" || fail "patch 2 not applied"
cmp -s "$t/k/src/net/mp/mp.c" "$t/tree/net/mp/mp.c" || fail "src file not copied"

touch -d '2000-01-01' "$t/tree/one" "$t/tree/two" "$t/tree/net/mp/mp.c"
"$apply" "$t/tree" >/dev/null
[ "$(find "$t/tree" -newermt 2001-01-01 -type f ! -path '*/.mp-applied/*' | wc -l)" = 0 ] ||
	fail "second run touched files"

# Change patch 2 (on the pristine text) only: patch 1's file is untouched.
sed -i 's/^+Y$/+W/' "$t/k/patches/0002-two.patch"
"$apply" "$t/tree" >/dev/null
grep -qx W "$t/tree/two" || fail "changed patch 2 not re-applied"
[ "$(stat -c %Y "$t/tree/one")" = "$(date -d 2000-01-01 +%s)" ] || fail "patch 1's file was touched"

rm "$t/k/src/net/mp/mp.c"
"$apply" "$t/tree" >/dev/null
[ ! -e "$t/tree/net/mp/mp.c" ] || fail "removed src file still in the tree"

printf -- '--- a/one\n+++ b/one\n@@ -1,3 +1,3 @@\n a\n-nope\n+N\n c\n' > "$t/k/patches/0003-bad.patch"
echo 0003-bad.patch >> "$t/k/patches/series"
if out=$("$apply" "$t/tree" 2>&1); then fail "a bad patch applied"; fi
grep -q '0003-bad.patch does not apply' <<<"$out" || fail "bad patch not named: $out"

# A hunk whose header counts one line less than it has: GNU patch would
# apply the first hunk and drop the next one without a word.
printf -- '--- a/two\n+++ b/two\n@@ -1,2 +1,2 @@\n x\n-W\n+V\n z\n@@ -3,1 +3,1 @@\n-z\n+Z\n' > "$t/k/patches/0003-bad.patch"
if out=$("$apply" "$t/tree" 2>&1); then fail "a malformed patch applied"; fi
grep -q '0003-bad.patch is malformed' <<<"$out" || fail "malformed patch not named: $out"
echo "apply-series: ok"
