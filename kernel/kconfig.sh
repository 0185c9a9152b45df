#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Generate a kernel .config from allnoconfig plus our fragments, then check
# that every symbol a fragment names ended up with the value it asked for.
#   kernel/kconfig.sh SRC_DIR OBJ_DIR FRAGMENT...
# The fragments used are recorded only after the check passed, so a failed
# config is regenerated (and fails again) on the next build.
set -euo pipefail
src=$1 obj=$2
shift 2
mkdir -p "$obj"
new=$obj/fragments.config.new
cat "$@" > "$new"
if [ -f "$obj/.config" ] && cmp -s "$new" "$obj/fragments.config"; then
	rm -f "$new"
	exit 0
fi
rm -f "$obj/fragments.config"
make -s -C "$src" O="$(realpath "$obj")" KCONFIG_ALLCONFIG="$(realpath "$new")" allnoconfig
"$(dirname "$0")/check-config.sh" "$obj/.config" "$new"
mv "$new" "$obj/fragments.config"
