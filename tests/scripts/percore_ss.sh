#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# ss (inet_diag) shows a per-core listener once, with Recv-Q the number of
# connections waiting in all its clones together, for IPv4 and IPv6.  Runs
# in a network namespace of its own, clients pinned to every CPU so that
# connections wait in several clones.
set -eu
[ -w /proc/sys/net/ipv4/tcp_percore_listen ] || { echo "no per-core listen in this kernel"; exit 1; }
exec unshare -n /bin/bash -c '
set -eu
ip link set lo up
sysctl -qw net.ipv4.tcp_percore_listen=1
exec /usr/bin/python3 - <<"PY"
import os, socket, subprocess, sys, time

TCP_PERCORE_LISTEN = 64
cpus = sorted(os.sched_getaffinity(0))
fail = 0
for fam, addr, port in ((socket.AF_INET, "127.0.0.1", 4243),
                        (socket.AF_INET6, "::1", 4244)):
    l = socket.socket(fam, socket.SOCK_STREAM)
    l.bind((addr, port))
    l.listen(64)
    mode = l.getsockopt(socket.IPPROTO_TCP, TCP_PERCORE_LISTEN)
    clients = []
    for cpu in cpus:
        os.sched_setaffinity(0, {cpu})
        for _ in range(3):
            c = socket.socket(fam, socket.SOCK_STREAM)
            c.connect((addr, port))
            clients.append(c)
    os.sched_setaffinity(0, set(cpus))
    want = len(clients)
    deadline = time.time() + 15
    while True:
        out = subprocess.run(["ss", "-ltnH", "-f", "inet" if fam == socket.AF_INET else "inet6",
                              "sport = :%d" % port], capture_output=True, text=True).stdout
        rows = [r.split() for r in out.splitlines() if r.strip()]
        if (len(rows) == 1 and int(rows[0][1]) == want) or time.time() > deadline:
            break
        time.sleep(0.05)
    ok = mode == 1 and len(rows) == 1 and int(rows[0][1]) == want and int(rows[0][2]) == 64
    print("%s %s: mode %d, ss rows %r, want one row with Recv-Q %d Send-Q 64"
          % ("ok" if ok else "FAIL", addr, mode, rows, want))
    fail += not ok
    for c in clients:
        c.close()
    l.close()
sys.exit(1 if fail else 0)
PY
'
