#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise an insncount plugin output file.

usage: report.py OUTFILE [--cpus 0-1] [--ops N] [--categories FILE] [--json]
                         [--top N]

Sums the kernel and user instructions of the selected vCPUs (default: all),
divides them by --ops when given, and splits the kernel instructions into
cost categories with the first-match-wins glob map of categories.txt.
"""
import argparse
import fnmatch
import json
import os
import re
import sys

DEFAULT_CATEGORIES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  'categories.txt')
OTHER = 'other'


def die(msg):
    sys.exit('report.py: ' + msg)


def parse_cpus(text):
    """'0-1,3' -> {0, 1, 3}"""
    cpus = set()
    for part in text.split(','):
        m = re.fullmatch(r'(\d+)(?:-(\d+))?', part.strip())
        if not m:
            die(f'bad --cpus list {text!r} (expected e.g. 0-1,3)')
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo:
            die(f'bad --cpus range {part!r}')
        cpus.update(range(lo, hi + 1))
    return cpus


def open_or_die(path):
    try:
        return open(path)
    except OSError as e:
        die(f'cannot open {path}: {e.strerror}')


def parse_outfile(path):
    """-> (header dict, {vcpu: (kernel, user)}, [(vcpu, count, name)])"""
    header = None
    vcpus = {}
    syms = []
    with open_or_die(path) as f:
        for lineno, line in enumerate(f, 1):
            w = line.split()
            try:
                if len(w) == 5 and w[0] == 'window' and w[2] == 'markers':
                    header = {'window': w[1], 'start_markers': int(w[3]),
                              'stop_markers': int(w[4])}
                elif (len(w) == 6 and w[0] == 'vcpu' and w[2] == 'kernel'
                      and w[4] == 'user'):
                    vcpus[int(w[1])] = (int(w[3]), int(w[5]))
                elif len(w) == 4 and w[0] == 'sym':
                    syms.append((int(w[1]), int(w[2]), w[3]))
                else:
                    raise ValueError
            except ValueError:
                die(f'{path}:{lineno}: unrecognised line: {line.rstrip()}')
    if header is None:
        die(f'{path}: no "window" header line (plugin did not exit cleanly?)')
    return header, vcpus, syms


def load_categories(path):
    """-> ordered [(category, pattern)]"""
    rules = []
    with open_or_die(path) as f:
        for lineno, line in enumerate(f, 1):
            w = line.split('#', 1)[0].split()
            if not w:
                continue
            if len(w) != 2:
                die(f'{path}:{lineno}: expected "category pattern"')
            rules.append((w[0], w[1]))
    return rules


def base_name(sym):
    """Drop compiler suffixes: foo.constprop.0 / foo.isra.0 / foo.cold."""
    return sym.split('.', 1)[0] or sym


def categorise(name, rules, cache):
    cat = cache.get(name)
    if cat is None:
        base = base_name(name)
        cat = next((c for c, p in rules if fnmatch.fnmatchcase(base, p)),
                   OTHER)
        cache[name] = cat
    return cat


def main():
    ap = argparse.ArgumentParser(
        description='Summarise an insncount output file.')
    ap.add_argument('outfile', help='file written by insncount.so out=')
    ap.add_argument('--cpus', help='vCPUs to sum, e.g. 0-1,3 (default all)')
    ap.add_argument('--ops', type=float,
                    help='divide counts by this number of operations')
    ap.add_argument('--categories', default=DEFAULT_CATEGORIES,
                    help='category map (default: %(default)s)')
    ap.add_argument('--json', action='store_true', help='print JSON')
    ap.add_argument('--top', type=int, default=0, metavar='N',
                    help='also list the N largest kernel symbols')
    args = ap.parse_args()
    if args.ops is not None and args.ops <= 0:
        die('--ops must be > 0')

    header, vcpus, syms = parse_outfile(args.outfile)
    cpus = parse_cpus(args.cpus) if args.cpus else set(vcpus)
    missing = sorted(cpus - set(vcpus))
    if missing:
        die(f'vCPU(s) {missing} not in {args.outfile} '
            f'(has {sorted(vcpus)})')
    if header['window'] == 'on' and header['start_markers'] == 0:
        print('report.py: warning: no start marker was executed; '
              'all counts are zero', file=sys.stderr)

    rules = load_categories(args.categories)
    kernel = sum(vcpus[c][0] for c in cpus)
    user = sum(vcpus[c][1] for c in cpus)
    ops = args.ops or 1
    cats = {c: 0 for c, _ in rules}
    cats[OTHER] = 0
    per_sym = {}
    cache = {}
    for vcpu, count, name in syms:
        if vcpu in cpus:
            cats[categorise(name, rules, cache)] += count
            per_sym[name] = per_sym.get(name, 0) + count
    if syms and sum(cats.values()) != kernel:
        print('report.py: warning: symbol counts do not add up to the '
              'kernel total', file=sys.stderr)

    def pct(n):
        return 100.0 * n / kernel if kernel else 0.0

    if args.json:
        out = {
            'window': header['window'],
            'markers': [header['start_markers'], header['stop_markers']],
            'cpus': sorted(cpus),
            'ops': args.ops,
            'kernel': kernel,
            'user': user,
            'per_op_kernel': kernel / ops,
            'per_op_user': user / ops,
            'categories': {c: {'instructions': n, 'per_op': n / ops,
                               'percent': pct(n)}
                           for c, n in cats.items() if n},
        }
        if args.top:
            top = sorted(per_sym.items(), key=lambda x: -x[1])[:args.top]
            out['top'] = [{'symbol': s, 'category': cache[s],
                           'instructions': n, 'per_op': n / ops}
                          for s, n in top]
        json.dump(out, sys.stdout, indent=1)
        print()
        return

    unit = 'insns/op' if args.ops else 'insns'
    print(f'window {header["window"]}, markers start {header["start_markers"]}'
          f' stop {header["stop_markers"]}, vCPUs '
          f'{",".join(map(str, sorted(cpus)))}'
          + (f', ops {args.ops:g}' if args.ops else ''))
    print(f'{"kernel":14} {kernel / ops:16.1f} {unit}')
    print(f'{"user":14} {user / ops:16.1f} {unit}')
    if syms:
        print()
        print(f'{"category":14} {unit:>16} {"percent":>9}')
        for c, n in sorted(cats.items(), key=lambda x: -x[1]):
            if n:
                print(f'{c:14} {n / ops:16.1f} {pct(n):8.1f}%')
    if args.top:
        print()
        print(f'{"symbol":40} {"category":14} {unit:>16} {"percent":>9}')
        for s, n in sorted(per_sym.items(), key=lambda x: -x[1])[:args.top]:
            print(f'{s:40} {cache[s]:14} {n / ops:16.1f} {pct(n):8.1f}%')


if __name__ == '__main__':
    main()
