#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Generate a kernel .config from allnoconfig plus our fragments, then check
# that every symbol a fragment names ended up with the value it asked for.
#   kernel/kconfig.sh SRC_DIR OBJ_DIR FRAGMENT...
# A later fragment overrides an earlier one's line for the same symbol (as in
# modular.config: CONFIG_IPV6=m over base.config's =y); only the last line of
# each symbol is passed on and checked.
# The fragments used are recorded only after the check passed, so a failed
# config is regenerated (and fails again) on the next build.
set -euo pipefail
src=$1 obj=$2
shift 2
mkdir -p "$obj"
new=$obj/fragments.config.new
awk '{ sym = "" }
	/^CONFIG_[A-Za-z0-9_]+=/ { sym = $0; sub(/=.*/, "", sym) }
	/^# CONFIG_[A-Za-z0-9_]+ is not set/ { sym = $2 }
	{ line[NR] = $0; if (sym != "") { if (sym in last) drop[last[sym]] = 1; last[sym] = NR } }
	END { for (i = 1; i <= NR; i++) if (!(i in drop)) print line[i] }' "$@" > "$new"
if [ -f "$obj/.config" ] && cmp -s "$new" "$obj/fragments.config"; then
	rm -f "$new"
	exit 0
fi
rm -f "$obj/fragments.config"
make -s -C "$src" O="$(realpath "$obj")" KCONFIG_ALLCONFIG="$(realpath "$new")" allnoconfig
"$(dirname "$0")/check-config.sh" "$obj/.config" "$new"
mv "$new" "$obj/fragments.config"
