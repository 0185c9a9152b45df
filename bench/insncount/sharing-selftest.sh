#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# sharing-selftest.sh BZIMAGE [SYSTEM_MAP] [ROUNDS]: prove sharing.so's
# coherence model in a VM (tests/vm/vm-run, 2 vCPUs, single-threaded TCG).
# sharing-pingpong passes a flag between two threads pinned to vCPUs 0 and 1
# ROUNDS times (default 1000) inside the marker window; on its turn each
# thread also adds 1 to a shared token with one locked read-modify-write
# instruction and bumps a counter of its own.  Passes only when the counts
# are exact: 4*ROUNDS user transfers on the flag's line (4 per round trip),
# 2*ROUNDS on the token's (a read-modify-write counts once), 0 on either
# counter's line; 2*ROUNDS loads and ROUNDS stores on each vCPU.
# Exit 0: pass, 1: fail, 2: usage.  $SHARING_SELFTEST_KEEP=DIR keeps the
# plugin output and the VM logs in DIR.
set -u
[ $# -ge 1 ] || { sed -n '4,14s/^# \{0,1\}//p' "$0" >&2; exit 2; }
kernel=$1 map=${2:-} rounds=${3:-1000}
dir=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$dir/../.." && pwd)

make -s -C "$dir" sharing.so || exit 1
if [ -n "${SHARING_SELFTEST_KEEP:-}" ]; then
	tmp=$SHARING_SELFTEST_KEEP
	mkdir -p "$tmp" || exit 1
else
	tmp=$(mktemp -d /tmp/sharing-selftest.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
fi
tmp=$(realpath "$tmp")
# The guest sees the host root over 9p: it runs the binary from $tmp.
${CC:-cc} -O2 -Wall -Wextra -static -pthread -o "$tmp/sharing-pingpong" \
	"$dir/sharing-pingpong.c" || exit 1
parg="$dir/sharing.so,out=$tmp/sharing.txt${map:+,map=$map}"
rm -f "$tmp/sharing.txt" "$tmp/vm/pingpong.txt"
start=$SECONDS
"$top/tests/vm/vm-run" -k "$kernel" -c 2 -m 512M -t 600 -o "$tmp/vm" -p "$parg" -- \
	sh -c "'$tmp/sharing-pingpong' $rounds > \$MP_OUT/pingpong.txt" >"$tmp/vm-run.log" 2>&1
rc=$?
echo "sharing-selftest: VM exit $rc after $((SECONDS - start))s"
if [ $rc != 0 ]; then
	tail -n 20 "$tmp/vm-run.log" >&2
	exit 1
fi
python3 - "$tmp/sharing.txt" "$tmp/vm/pingpong.txt" "$rounds" <<'PY'
import sys
out, pp, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
w = open(pp).read().split()
prog = dict(zip(w[1::2], w[2::2]))
flag = int(prog['flag'], 16) & ~63
token = int(prog['token'], 16) & ~63
counters = [int(prog[f'counter{i}'], 16) & ~63 for i in (0, 1)]
fails = []
def check(what, got, want):
    ok = got == want
    print(f'sharing-selftest: {what}: {got} (want {want}) {"ok" if ok else "FAIL"}')
    if not ok:
        fails.append(what)
vc = {}
line_user = {}	# user vaddr line -> transfers
line_of = {}	# paddr -> user vaddr line
header = None
for line in open(out):
    f = line.split()
    if f[0] == 'sharing':
        header = f
    elif f[0] == 'vcpu':
        vc[int(f[1])] = dict(zip(f[2::2], map(int, f[3::2])))
    elif f[0] == 'line':
        line_of[f[1]] = int(f[3], 16)
    elif f[0] == 'lsite' and f[7] == '[user]':
        va = line_of[f[1]]
        line_user[va] = line_user.get(va, 0) + int(f[5])
if header is None:
    sys.exit('sharing-selftest: no plugin output header')
check('markers start/stop', (int(header[4]), int(header[5])), (1, 1))
check('counters after the run', (int(prog['count0']), int(prog['count1']),
      int(prog['tokens'])), (rounds + 16, rounds + 17, 2 * rounds + 33))
for v in (0, 1):
    check(f'vCPU {v} user load transfers', vc[v]['uload'], 2 * rounds)
    check(f'vCPU {v} user store transfers', vc[v]['ustore'], rounds)
check('user transfers, all lines', sum(line_user.values()), 6 * rounds)
check("transfers on the flag's line", line_user.get(flag, 0), 4 * rounds)
check("transfers on the token's line (read-modify-write counts once)",
      line_user.get(token, 0), 2 * rounds)
for i, c in enumerate(counters):
    check(f"transfers on counter {i}'s line (one CPU only)",
          line_user.get(c, 0), 0)
print('sharing-selftest: ' + ('PASS' if not fails else
                              'FAIL: ' + ', '.join(fails)))
sys.exit(1 if fails else 0)
PY
