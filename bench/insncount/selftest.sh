#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Boot a kernel under QEMU TCG with the insncount plugin and run one
# measured workload from a throw-away busybox initramfs.
#
# usage: selftest.sh BZIMAGE SYSTEM_MAP OUTFILE WORKLOAD [SMP] [single|multi]
#   WORKLOAD: getpid:N | accept:N | true:N  (N x /bin/true from the shell)
#   SMP defaults to 2, TCG threading to single.  Extra QEMU options can be
#   given in $QEMU_OPTS, extra plugin arguments in $INSNCOUNT_ARGS
#   (e.g. INSNCOUNT_ARGS=window=all).
# Needs busybox-static and a static libc (libc6-dev); the kernel must have
# initramfs, devtmpfs and 8250 console support, and is booted with nokaslr.
set -eu

[ $# -ge 4 ] || { sed -n '7,11s/^# \{0,1\}//p' "$0" >&2; exit 2; }
kernel=$1 map=$2 out=$3 workload=$4 smp=${5:-2} thread=${6:-single}
dir=$(cd "$(dirname "$0")" && pwd)
busybox=/bin/busybox
[ -x "$busybox" ] && ! readelf -l "$busybox" | grep -q 'program interpreter' ||
	{ echo "selftest.sh: need a static $busybox (apt-get install busybox-static)" >&2; exit 1; }

make -s -C "$dir" -j1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/bin" "$tmp/root/proc" "$tmp/root/sys" "$tmp/root/dev"
cp "$busybox" "$tmp/root/bin/busybox"
cp "$dir/mp-mark" "$tmp/root/bin/mp-mark"
${CC:-cc} -O2 -Wall -Wextra -static -o "$tmp/root/bin/selftest" "$dir/selftest.c"
cat > "$tmp/root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
ip link set lo up
w=$(sed -n 's/.*ictest=\([^ ]*\).*/\1/p' /proc/cmdline)
echo "selftest: running $w"
case $w in
true:*)
	n=${w#true:} i=0
	mp-mark start
	while [ $i -lt $n ]; do /bin/true; i=$((i + 1)); done
	mp-mark stop
	;;
*)
	selftest ${w%%:*} ${w#*:}
	;;
esac
echo "selftest: done"
poweroff -f
INIT
chmod +x "$tmp/root/init"
(cd "$tmp/root" && find . | cpio -o -H newc --quiet) > "$tmp/initrd.cpio"

qemu-system-x86_64 -M q35 -cpu max -smp "$smp" -m 1G -nographic -no-reboot \
	-kernel "$kernel" -initrd "$tmp/initrd.cpio" \
	-append "console=ttyS0 nokaslr panic=-1 quiet ictest=$workload" \
	-accel tcg,thread="$thread" \
	-plugin "$dir/insncount.so,map=$map,out=$out${INSNCOUNT_ARGS:+,$INSNCOUNT_ARGS}" \
	${QEMU_OPTS:-}
