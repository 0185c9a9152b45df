#!/bin/bash
# Generate a kernel .config from allnoconfig plus our fragments, then check
# that every symbol a fragment names ended up with the value it asked for.
#   scripts/kconfig.sh SRC_DIR OBJ_DIR FRAGMENT...
set -euo pipefail
src=$1 obj=$2
shift 2
mkdir -p "$obj"
cat "$@" > "$obj/fragments.config.new"
# Only regenerate when the fragments changed (keeps incremental builds incremental).
if [ -f "$obj/.config" ] && cmp -s "$obj/fragments.config.new" "$obj/fragments.config"; then
	rm -f "$obj/fragments.config.new"
	exit 0
fi
mv "$obj/fragments.config.new" "$obj/fragments.config"
make -s -C "$src" O="$(realpath "$obj")" KCONFIG_ALLCONFIG="$(realpath "$obj/fragments.config")" allnoconfig
"$(dirname "$0")/check-config.sh" "$obj/.config" "$obj/fragments.config"
