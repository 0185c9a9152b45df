#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install the Debian packages the build, the VM, the tests and the benchmarks
# need.  A no-op when all are present.  Usage: scripts/deps.sh [extra-pkg...]
set -euo pipefail
pkgs=(
	build-essential bc bison flex libelf-dev libssl-dev ccache cpio xz-utils kmod rsync
	qemu-system-x86 python3 iproute2 procps ethtool busybox-static
	liburing-dev libglib2.0-dev gnuplot-nox wrk memcached libmemcached-tools nginx-light
	groff-base pkg-config nftables iptables
	"$@"
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} = 0 ] && exit 0

if [ ! -r /etc/debian_version ] || ! command -v apt-get >/dev/null; then
	echo "deps: this build needs Debian bookworm's packages; install these by hand:" >&2
	echo "  ${missing[*]}" >&2
	exit 1
fi
sudo=
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
	sudo=sudo
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
