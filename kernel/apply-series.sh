#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# apply-series.sh TREE: bring TREE (a copy of the pristine source) to
# kernel/src + kernel/patches/series, quilt-style and incrementally: patches
# already applied and unchanged stay; changed or removed ones are reverted
# (newest first) and the rest applied in order, so only the files they touch
# get new timestamps.  Files under kernel/src are copied in when they differ.
# A patch that does not apply stops the build with its name.
set -euo pipefail
kdir=${MP_KERNEL_DIR:-$(dirname "$(realpath "$0")")}
tree=$(realpath "$1")
state=$tree/.mp-applied
mkdir -p "$state"
touch "$state/series"

mapfile -t want < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$kdir/patches/series" 2>/dev/null || true)
mapfile -t have < "$state/series"

# Longest common prefix of identical patches.
keep=0
while [ $keep -lt ${#have[@]} ] && [ $keep -lt ${#want[@]} ] &&
	[ "${have[$keep]}" = "${want[$keep]}" ] &&
	cmp -s "$state/${have[$keep]}" "$kdir/patches/${want[$keep]}"; do
	keep=$((keep + 1))
done

# Files the patches about to be reverted touch, with their content hash and
# mtime: those that come out of the re-application unchanged get their old
# mtime back, so that a change to one early patch does not rebuild whatever
# includes the headers of every later one.
: > "$state/touched"
for ((i = keep; i < ${#have[@]}; i++)); do
	sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$state/${have[$i]}"
done | sort -u | while read -r f; do
	[ -f "$tree/$f" ] || continue
	printf '%s %s %s\n' "$(sha1sum < "$tree/$f" | cut -d' ' -f1)" \
			"$(stat -c %Y.%y "$tree/$f" | sed 's/^\([0-9]*\)\..*\.\([0-9]*\) .*/\1.\2/')" "$f"
done > "$state/touched"

for ((i = ${#have[@]} - 1; i >= keep; i--)); do
	p=${have[$i]}
	echo "  UNPATCH $p"
	patch -d "$tree" -p1 -R -s --batch < "$state/$p" ||
		{ echo "apply-series: cannot revert $p; remove $tree to start again" >&2; exit 1; }
	rm -f "$state/$p"
	printf '%s\n' "${have[@]:0:$i}" | sed '/^$/d' > "$state/series"
done

# New files (real source) copied in when their content differs.
if [ -d "$kdir/src" ]; then
	(cd "$kdir/src" && find . -type f) | sed 's|^\./||' | sort > "$state/srcfiles.new"
	while read -r f; do
		cmp -s "$kdir/src/$f" "$tree/$f" || install -D -m 0644 "$kdir/src/$f" "$tree/$f"
	done < "$state/srcfiles.new"
	[ -f "$state/srcfiles" ] && comm -23 "$state/srcfiles" "$state/srcfiles.new" |
		while read -r f; do rm -f "$tree/$f"; done
	mv "$state/srcfiles.new" "$state/srcfiles"
fi

for ((i = keep; i < ${#want[@]}; i++)); do
	p=${want[$i]}
	echo "  PATCH   $p"
	# GNU patch skips a hunk whose line counts are wrong without a word:
	# git's stricter parser must accept the file first.
	if ! git apply --stat "$kdir/patches/$p" >/dev/null 2>&1; then
		echo "apply-series: patch kernel/patches/$p is malformed:" >&2
		git apply --stat "$kdir/patches/$p" >&2 || true
		exit 1
	fi
	if ! patch -d "$tree" -p1 -s --batch --forward --dry-run < "$kdir/patches/$p" >/dev/null; then
		echo "apply-series: patch kernel/patches/$p does not apply:" >&2
		patch -d "$tree" -p1 --batch --forward --dry-run < "$kdir/patches/$p" >&2 || true
		exit 1
	fi
	patch -d "$tree" -p1 -s --batch --forward < "$kdir/patches/$p"
	cp "$kdir/patches/$p" "$state/$p"
	echo "$p" >> "$state/series"
done

# Unchanged files keep their old mtime (see "touched" above).
while read -r sum mtime f; do
	[ -f "$tree/$f" ] && [ "$(sha1sum < "$tree/$f" | cut -d' ' -f1)" = "$sum" ] &&
		touch -m -d "@$mtime" "$tree/$f" || true
done < "$state/touched"
rm -f "$state/touched"
