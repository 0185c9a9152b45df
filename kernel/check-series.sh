#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# check-series.sh PRISTINE WORKDIR FEATURES FRAGMENT...: the series is
# bisectable when the kernel builds after every patch.  Applies the series one
# patch at a time to a copy of PRISTINE and builds the config of FRAGMENT...
# after each, its modules too when it has CONFIG_MODULES=y (then modpost fails
# on a symbol a module uses that is not exported) (slow: one incremental
# kernel build per patch; ccache helps).
# FEATURES (our Kconfig symbols) is merged in before every build: a symbol
# that the patches so far do not define yet is dropped by olddefconfig.
set -euo pipefail
kdir=$(dirname "$(realpath "$0")")
pristine=$(realpath "$1") work=$2 features=$(realpath "$3")
shift 3
mkdir -p "$work"
work=$(realpath "$work")
tree=$work/linux obj=$work/obj
rm -rf "$tree" && cp -a "$pristine" "$tree"
"$kdir/kconfig.sh" "$tree" "$obj" "$@"
targets=(bzImage)
if grep -qx 'CONFIG_MODULES=y' "$obj/.config"; then targets+=(modules); fi
mapfile -t series < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$kdir/patches/series")
# kernel/src files arrive with the patch that first mentions their directory:
# simplest correct rule is to copy them all in up front; a patch that needs
# them must come after the one adding their Kconfig/Makefile hooks.
[ -d "$kdir/src" ] && cp -r "$kdir/src/." "$tree/"
n=0
for p in "${series[@]}"; do
	n=$((n + 1))
	echo "check-series: [$n/${#series[@]}] $p"
	patch -d "$tree" -p1 -s --batch --forward < "$kdir/patches/$p"
	# Replace, not just append, so that Kconfig does not warn about overrides.
	sed -n 's/^\(CONFIG_[A-Za-z0-9_]*\)=.*/\1/p' "$features" | while read -r sym; do
		sed -i -e "/^$sym=/d" -e "/^# $sym is not set/d" "$obj/.config"
	done
	grep '^CONFIG_' "$features" >> "$obj/.config"
	make -s -C "$tree" O="$obj" CC="ccache gcc" -j"$(($(nproc) + 1))" olddefconfig "${targets[@]}" ||
		{ echo "check-series: the kernel does not build after $p" >&2; exit 1; }
done
echo "check-series: all ${#series[@]} prefixes build"
