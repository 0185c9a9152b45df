#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""user-report.py: a profile of the server's user-space code, per function.

Reads the "utb" lines that insncount writes with user=1 (each user
translation block's first address and the instructions it ran on a vCPU)
and the server's /proc/PID/maps (server.maps), both from one
`run-bench --metric insns --user-profile` run directory, and prints the
user instructions per operation of each function, largest first.  The
server runs without ASLR there, so its load addresses are those of
server.maps (its files are looked for here under the guest's path or a
suffix of it: the guest's root is this machine's); a block outside every mapping of a file (the vDSO, another
process on the same vCPU) is counted under its mapping's name or
"[other]".

    bench/insncount/user-report.py RUN_DIR --cpus 0 --ops 2000 [--top N]
"""
import argparse
import bisect
import collections
import os
import subprocess
import sys


def cpu_list(text):
    cpus = set()
    for part in text.split(','):
        lo, _, hi = part.partition('-')
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def host_path(name):
    """The guest's path here: its root is the host's, mounted somewhere."""
    parts = name.split('/')
    for i in range(1, len(parts)):
        p = '/' + '/'.join(parts[i:])
        if os.path.exists(p):
            return p
    return None


def load_maps(path):
    """[(start, end, file, base)]: base is the file's load address."""
    maps, bases = [], {}
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) < 5:
                continue
            start, end = (int(x, 16) for x in w[0].split('-'))
            off = int(w[2], 16)
            name = w[5] if len(w) > 5 else ''
            if name.startswith('/') and name not in bases:
                bases[name] = start - off
            maps.append((start, end, name))
    return [(s, e, n, bases.get(n)) for s, e, n in sorted(maps)]


_syms = {}


def symbols(path):
    """Sorted function start addresses and names of an ELF file."""
    if path in _syms:
        return _syms[path]
    addrs, names = [], []
    for opt in ([], ['-D']):
        try:
            out = subprocess.run(['nm', '-n', '--defined-only'] + opt + [path],
                                 capture_output=True, text=True).stdout
        except OSError:
            out = ''
        for line in out.splitlines():
            w = line.split()
            if len(w) == 3 and w[1] in 'tTwWiI':
                addrs.append(int(w[0], 16))
                names.append(w[2])
        if addrs:
            break
    pairs = sorted(zip(addrs, names))
    _syms[path] = ([a for a, _ in pairs], [n for _, n in pairs])
    return _syms[path]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('run_dir')
    ap.add_argument('--cpus', required=True, help='server vCPUs, e.g. 0 or 0-1')
    ap.add_argument('--ops', type=int, required=True)
    ap.add_argument('--top', type=int, default=40)
    a = ap.parse_args()
    cpus = cpu_list(a.cpus)
    maps = load_maps(os.path.join(a.run_dir, 'server.maps'))
    starts = [m[0] for m in maps]
    acc = collections.Counter()
    total = user = 0
    with open(os.path.join(a.run_dir, 'insn.txt')) as f:
        for line in f:
            w = line.split()
            if len(w) == 6 and w[0] == 'vcpu' and int(w[1]) in cpus:
                user += int(w[5])
            if len(w) != 4 or w[0] != 'utb' or int(w[1]) not in cpus:
                continue
            n, addr = int(w[2]), int(w[3], 16)
            total += n
            i = bisect.bisect_right(starts, addr) - 1
            if i < 0 or addr >= maps[i][1]:
                acc['[other]'] += n
                continue
            _, _, name, base = maps[i]
            path = host_path(name) if name.startswith('/') else None
            if base is None or not path:
                acc[name or '[anon]'] += n
                continue
            addrs, names = symbols(path)
            j = bisect.bisect_right(addrs, addr - base) - 1
            sym = names[j] if j >= 0 else '?'
            acc[f'{os.path.basename(name)}:{sym}'] += n
    if not total:
        sys.exit('user-report: no utb lines for those vCPUs (run with --user-profile)')
    if total != user:	# every user block has its line: they add up
        sys.exit(f'user-report: utb lines add up to {total}, the vcpu lines to {user}')
    print(f'user instructions per op: {total / a.ops:.1f}')
    for sym, n in acc.most_common(a.top):
        print(f'{n / a.ops:9.1f} {100 * n / total:5.1f}%  {sym}')


if __name__ == '__main__':
    main()
