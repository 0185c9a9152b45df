#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make kernel-deb is too slow for CI, but its config is generated and checked
# here: Debian's amd64 config plus ours, our symbols on, Debian's signing keys
# replaced by a key generated at build time.
set -eu
top=$(realpath "$(dirname "$0")/../..")
tree=$top/build/linux
[ -f "$tree/.mp-debian-version" ] || { echo "FAIL: no patched tree at $tree (make source)" >&2; exit 1; }
obj=$top/build/kbuild-deb
"$top/kernel/deb-config.sh" "$tree" "$obj" >/dev/null 2>"$obj.err" || { cat "$obj.err" >&2; exit 1; }
cfg=$obj/.config
for want in 'CONFIG_SYSTEM_TRUSTED_KEYS=""' 'CONFIG_MODULE_SIG_KEY="certs/signing_key.pem"' \
	'CONFIG_LOCALVERSION="-megapipe"' 'CONFIG_MODULES=y' 'CONFIG_SECURITY_APPARMOR=y'; do
	grep -qxF "$want" "$cfg" || { echo "FAIL: $want missing from $cfg" >&2; exit 1; }
done
# It is Debian's config, not ours: a symbol only Debian turns on must be there.
grep -qx 'CONFIG_EXT4_FS=[ym]' "$cfg" || { echo "FAIL: not Debian's config" >&2; exit 1; }
echo "deb-config: ok"
