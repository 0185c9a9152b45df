#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# get-linux.sh VERSION DEST: extract Debian's linux-source-6.12 at exactly
# VERSION into DEST (a pristine tree).  Stops with the pinned and the
# available versions when the pinned one is no longer served.
set -euo pipefail
ver=$1 dest=$2
pkg=linux-source-6.12
debdir=$(dirname "$dest")/deb
deb=$debdir/${pkg}_${ver/:/%3a}_all.deb
mkdir -p "$debdir"
if [ ! -f "$deb" ]; then
	if ! apt-cache madison "$pkg" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -qxF "$ver"; then
		apt-get update -qq 2>/dev/null || true
	fi
	avail=$(apt-cache madison "$pkg" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}')
	if ! grep -qxF "$ver" <<<"$avail"; then
		echo "get-linux: $pkg $ver (the version pinned in the Makefile) is not served." >&2
		echo "get-linux: available: $(echo $avail)" >&2
		echo "get-linux: rebuild against one with: make LINUX_DEB_VERSION=<version> ..." >&2
		exit 1
	fi
	(cd "$debdir" && apt-get -o APT::Sandbox::User=root download -q "$pkg=$ver" >/dev/null)
	[ -f "$deb" ] || deb=$(ls "$debdir"/${pkg}_*"${ver##*:}"*_all.deb | head -n 1)
fi
tmp=$dest.tmp
rm -rf "$tmp" && mkdir -p "$tmp"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./usr/src/$pkg.tar.xz
tar -xf "$tmp/usr/src/$pkg.tar.xz" -C "$tmp"
rm -rf "$dest"
mv "$tmp/$pkg" "$dest"
rm -rf "$tmp"
echo "$ver" > "$dest/.mp-debian-version"
echo "get-linux: $pkg $ver extracted in $dest"
