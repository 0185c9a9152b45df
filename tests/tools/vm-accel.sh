#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Test vm-run's choice of accelerator, with a fake QEMU (MP_QEMU) that records
# the -accel of every boot and, under KVM, works, aborts or hangs as FAKE_KVM
# says, and a writable file standing in for /dev/kvm (MP_KVM_DEV): TCG by
# default even with a writable /dev/kvm; KVM only with MP_KVM=1 and a probe
# boot that works (probed once, then cached); TCG within a bounded time when
# the probe aborts or hangs; never KVM with a plugin or VM_NO_KVM=1.
set -u
top=$(realpath "$(dirname "$0")/../..")
vmrun=$top/tests/vm/vm-run
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }

cat >"$t/qemu" <<'EOF'
#!/bin/bash
[ "${1:-}" = --version ] && { echo "QEMU emulator version 0.0 (fake)"; exit 0; }
accel= out= prev=
for a in "$@"; do
	[ "$prev" = -accel ] && accel=$a
	case $a in local,id=out,path=*) out=${a#local,id=out,path=}; out=${out%%,*} ;; esac
	prev=$a
done
echo "$accel" >>"$FAKE_DIR/boots"
if [ "$accel" = kvm ]; then
	case $FAKE_KVM in
	abort) echo "qemu: kvm_buf_set_msrs: failed to set MSR 0x10a" >&2; exit 1 ;;
	hang) exec sleep 300 ;;
	esac
fi
echo 0 >"$out/exit-status"
EOF
chmod +x "$t/qemu"
echo "not a kernel" >"$t/bzImage"
: >"$t/kvm-dev"

# check NAME WANT_BOOTS MAX_SECS [VAR=VALUE...] [-- VM-RUN-OPTIONS...]: one
# vm-run of 'true' must succeed within MAX_SECS seconds, and the fake QEMU
# must have seen exactly WANT_BOOTS (the -accel of each boot, probe first).
check() {
	local name=$1 want=$2 max=$3 start rc boots vars=() opts=()
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do vars+=("$1"); shift; done
	[ $# -gt 0 ] && shift && opts=("$@")
	: >"$t/boots"
	start=$SECONDS
	env -u MP_KVM -u VM_NO_KVM -u MP_KVM_PROBING -u MP_KVM_PROBE_TIMEOUT \
		MP_QEMU="$t/qemu" FAKE_DIR="$t" FAKE_KVM=ok MP_KVM_DEV="$t/kvm-dev" \
		MP_KVM_CACHE="$t/cache" MP_KVM_PROBE_TIMEOUT=2 "${vars[@]}" \
		"$vmrun" -k "$t/bzImage" -t 15 -o "$t/out" "${opts[@]}" -- true >"$t/err" 2>&1
	rc=$?
	boots=$(paste -sd ' ' "$t/boots")
	if [ $rc != 0 ]; then
		fail "$name: vm-run exit $rc: $(cat "$t/err")"
	elif [ "$boots" != "$want" ]; then
		fail "$name: boots '$boots', want '$want'"
	elif [ $((SECONDS - start)) -gt "$max" ]; then
		fail "$name: took $((SECONDS - start)) s, want <= $max"
	else
		echo "ok: $name: $boots"
	fi
}

check "default, writable /dev/kvm" "tcg,thread=multi" 10
check "VM_NO_KVM=1" "tcg,thread=multi" 10 MP_KVM=1 VM_NO_KVM=1
check "MP_KVM=1, plugin" "tcg,thread=single" 10 MP_KVM=1 -- -p /nonexistent.so
check "MP_KVM=1, no /dev/kvm" "tcg,thread=multi" 10 MP_KVM=1 MP_KVM_DEV="$t/none"
check "MP_KVM=1, KVM aborts" "kvm tcg,thread=multi" 10 MP_KVM=1 FAKE_KVM=abort \
	MP_KVM_CACHE="$t/c-abort"
grep -q '^vm-run: MP_KVM=1 but .*; using TCG$' "$t/err" || fail "no fallback message: $(cat "$t/err")"
check "MP_KVM=1, KVM hangs" "kvm tcg,thread=multi" 20 MP_KVM=1 FAKE_KVM=hang \
	MP_KVM_CACHE="$t/c-hang"
check "MP_KVM=1, KVM hangs, cached" "tcg,thread=multi" 10 MP_KVM=1 FAKE_KVM=hang \
	MP_KVM_CACHE="$t/c-hang"
check "MP_KVM=1, KVM works" "kvm kvm" 10 MP_KVM=1 MP_KVM_CACHE="$t/c-ok"
check "MP_KVM=1, KVM works, cached" "kvm" 10 MP_KVM=1 MP_KVM_CACHE="$t/c-ok"
echo "another kernel" >"$t/bzImage"
check "MP_KVM=1, KVM works, new kernel" "kvm kvm" 10 MP_KVM=1 MP_KVM_CACHE="$t/c-ok"

[ $failed = 0 ] && echo "vm-accel: ok"
exit $failed
