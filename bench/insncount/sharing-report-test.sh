#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# sharing-report-test.sh: report.py on a hand-made sharing.so output (no VM):
# transfers to the selected vCPUs, split by source (own: another selected
# vCPU, other: any other), kernel/user, categories, top sites by own
# transfers and the hottest lines must come out as computed by hand.
set -u
dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/sharing.txt" <<'OUT'
sharing window on markers 1 1 line 64 vcpus 4 chunks 3 ignored 0
vcpu 0 kload 30 kstore 10 uload 2 ustore 0 cold 5
vcpu 1 kload 20 kstore 0 uload 0 ustore 0 cold 1
vcpu 2 kload 7 kstore 0 uload 0 ustore 0 cold 0
vcpu 3 kload 0 kstore 0 uload 0 ustore 0 cold 0
line 1000 50 ffff888000001000 -
lsite 1000 0 1 ld 20 ffffffff81000010 ep_poll_callback+0x10
lsite 1000 1 2 ld 20 ffffffff81000010 ep_poll_callback+0x10
lsite 1000 0 2 st 10 ffffffff81000100 _raw_spin_lock+0x4
line 2000 7 ffffffff81a00000 jiffies+0x0
lsite 2000 2 0 ld 7 ffffffff81000200 tcp_v4_rcv+0x8
xfer 0 1 ld 20 ffffffff81000010 ep_poll_callback+0x10
xfer 1 2 ld 20 ffffffff81000010 ep_poll_callback+0x10
xfer 0 2 st 10 ffffffff81000100 _raw_spin_lock+0x4
xfer 0 3 ld 10 ffffffff81000300 tcp_v4_rcv+0x20
xfer 0 1 ld 2 401000 [user]
xfer 2 0 ld 7 ffffffff81000200 tcp_v4_rcv+0x8
OUT
"$dir/report.py" "$tmp/sharing.txt" --cpus 0-1 --ops 10 --json --top 5 >"$tmp/r.json" || exit 1
python3 - "$tmp/r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
fails = []
def eq(what, got, want):
    if abs(got - want) > 1e-9 if isinstance(want, float) else got != want:
        fails.append(f'{what}: {got}, want {want}')
# to vCPUs 0-1: 20 (0<-1, own) + 20 (1<-2) + 10 (0<-2) + 10 (0<-3) + 2 user (0<-1)
eq('per_op', r['per_op'], 6.2)
eq('per_op_own', r['per_op_own'], 2.2)
eq('per_op_other', r['per_op_other'], 4.0)
eq('per_op_kernel', r['per_op_kernel'], 6.0)
eq('per_op_user', r['per_op_user'], 0.2)
eq('per_op_kernel_own', r['per_op_kernel_own'], 2.0)
eq('per_op_loads', r['per_op_loads'], 5.2)
eq('per_op_stores', r['per_op_stores'], 1.0)
eq('cold_per_op', r['cold_per_op'], 0.6)
eq('epoll', r['categories']['epoll']['per_op'], 4.0)
eq('epoll own', r['categories']['epoll']['per_op_own'], 2.0)
eq('locks', r['categories']['locks']['per_op'], 1.0)
eq('tcp/ip', r['categories']['tcp/ip']['per_op'], 1.0)
eq('top site', r['top'][0]['symbol'], 'ep_poll_callback')
eq('top_own', [t['symbol'] for t in r['top_own']], ['ep_poll_callback', '[user]'])
eq('hottest line', r['lines'][0]['paddr'], '0x1000')
eq('hottest line per_op', r['lines'][0]['per_op'], 5.0)
eq('hottest line own', r['lines'][0]['per_op_own'], 2.0)
eq('lines to 0-1 only', len(r['lines']), 1)
eq('markers', r['markers'], [1, 1])
for f in fails:
    print('sharing-report-test: FAIL ' + f)
print('sharing-report-test: ' + ('PASS' if not fails else 'FAIL'))
sys.exit(1 if fails else 0)
PY
