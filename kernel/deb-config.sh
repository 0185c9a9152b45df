#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# deb-config.sh TREE OBJ: a .config for installable Debian packages: Debian's
# own full config for 6.12 (from the linux-config-6.12 package, matching the
# pinned source version when it is served) plus our fragment, with the
# signing keys handled (Debian's trusted keys are not ours: module signing
# keys are generated at build time; Debian builds no revocation list).
# Then checks that our symbols are on.
set -euo pipefail
kdir=$(dirname "$(realpath "$0")")
tree=$(realpath "$1") obj=$2
mkdir -p "$obj"
obj=$(realpath "$obj")
ver=$(cat "$tree/.mp-debian-version")
work=$obj/debian-config
mkdir -p "$work"
if [ ! -f "$work/config.amd64" ]; then
	(cd "$work" && apt-get -o APT::Sandbox::User=root download -q "linux-config-6.12=$ver" >/dev/null 2>&1 ||
		apt-get -o APT::Sandbox::User=root download -q linux-config-6.12 >/dev/null) ||
		{ echo "deb-config: cannot download linux-config-6.12" >&2; exit 1; }
	dpkg-deb -x "$work"/linux-config-6.12_*.deb "$work/x"
	xz -dc "$work"/x/usr/src/linux-config-6.12/config.amd64_none_amd64.xz > "$work/config.amd64"
fi
cp "$work/config.amd64" "$obj/.config"
cat >> "$obj/.config" <<'EOC'
CONFIG_SYSTEM_TRUSTED_KEYS=""
CONFIG_MODULE_SIG_KEY="certs/signing_key.pem"
CONFIG_LOCALVERSION="-megapipe"
# CONFIG_DEBUG_INFO_BTF is not set
EOC
[ -f "$kdir/configs/features.config" ] && cat "$kdir/configs/features.config" >> "$obj/.config"
make -s -C "$tree" O="$obj" olddefconfig
frags=("$kdir/configs/deb.config")
[ -f "$kdir/configs/features.config" ] && frags+=("$kdir/configs/features.config")
"$kdir/check-config.sh" "$obj/.config" "${frags[@]}"
echo "deb-config: $obj/.config ready (Debian's amd64 config + ours)"
