#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# checkpatch.sh KSRC: run the extracted tree's scripts/checkpatch.pl on every
# patch of the series and on every new source file under kernel/src.
set -uo pipefail
kdir=$(dirname "$(realpath "$0")")
ksrc=$(realpath "$1")
cp=$ksrc/scripts/checkpatch.pl
rc=0
mapfile -t series < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$kdir/patches/series")
for p in "${series[@]}"; do
	perl "$cp" --no-tree --quiet --strict "$kdir/patches/$p" || { echo "checkpatch: $p" >&2; rc=1; }
done
if [ -d "$kdir/src" ]; then
	while read -r f; do
		perl "$cp" --no-tree --quiet --strict -f "$f" || { echo "checkpatch: $f" >&2; rc=1; }
	done < <(find "$kdir/src" -name '*.[ch]')
fi
[ $rc = 0 ] && echo "checkpatch: ${#series[@]} patches clean"
exit $rc
