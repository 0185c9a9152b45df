#!/bin/bash
# check-config.sh DOTCONFIG FRAGMENT...
# Fails, naming the symbol, when a fragment line did not survive Kconfig
# (a missing dependency silently drops a symbol).
set -uo pipefail
cfg=$1
shift
bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*)
		sym=${line%%=*}
		if ! grep -qxF -- "$line" "$cfg"; then
			echo "check-config: $line requested, got: $(grep -E "^(# )?$sym[= ]" "$cfg" || echo unset)" >&2
			bad=1
		fi ;;
	"# CONFIG_"*" is not set")
		sym=${line#\# }; sym=${sym%% *}
		if grep -q "^$sym=" "$cfg"; then
			echo "check-config: $sym requested off, got: $(grep "^$sym=" "$cfg")" >&2
			bad=1
		fi ;;
	esac
done < <(cat "$@")
exit $bad
