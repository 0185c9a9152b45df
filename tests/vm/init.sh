#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# PID 1 of the test VM (see vm-run).  Stage 1 runs on the read-only 9p root:
# it builds a tmpfs overlay over it and re-executes itself there.  Stage 2
# mounts the usual filesystems, runs the command vm-run left in the results
# share, writes its exit status back there and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=${TERM:-linux} LANG=C.UTF-8

poweroff_now() {
	sync
	# reboot(LINUX_REBOOT_CMD_POWER_OFF); QEMU runs with -no-reboot.
	if [ -e /mp-initramfs ]; then
		busybox poweroff -f
	else
		python3 -c 'import ctypes; ctypes.CDLL(None).reboot(0x4321fedc)'
	fi
	exec /bin/sleep infinity
}

die() {
	echo "init: $*" >&2
	poweroff_now
}

# From an initramfs (the bench bundle) the root is already writable.
if [ "${1:-}" != stage2 ] && [ ! -e /mp-initramfs ]; then
	mount -t proc proc /proc || die "cannot mount /proc"
	mount -t tmpfs -o mode=0755 ovl /mnt || die "cannot mount tmpfs on /mnt"
	mkdir -p /mnt/upper /mnt/work /mnt/root
	mount -t overlay overlay -o lowerdir=/,upperdir=/mnt/upper,workdir=/mnt/work /mnt/root ||
		die "cannot mount the overlay root"
	umount /proc
	exec chroot /mnt/root "$0" stage2
fi

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# What udev would make: bash's process substitution needs /dev/fd.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# The overlay already makes everything writable (in RAM).  Only /run gets a
# fresh tmpfs: /tmp stays the overlay so that a checkout under the host's
# /tmp (a CI clone) is still visible to the guest.
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mkdir -p /mp-out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576 mpout /mp-out || die "cannot mount the results share"
export MP_OUT=/mp-out
hostname mpvm
ip link set lo up
echo 1 > /proc/sys/kernel/printk_devkmsg 2>/dev/null

if grep -qw mp.interactive=1 /proc/cmdline; then
	echo "vm: interactive shell; 'exit' powers off"
	setsid -c /bin/bash -l
	rc=$?
else
	bash "$MP_OUT/guest-cmd" </dev/null
	rc=$?
fi
sync
echo "$rc" > "$MP_OUT/exit-status"
sync
umount /mp-out 2>/dev/null
poweroff_now
