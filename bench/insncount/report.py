#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise an insncount or sharing plugin output file.

usage: report.py OUTFILE [--cpus 0-1] [--ops N] [--categories FILE] [--json]
                         [--top N]

insncount.so: sums the kernel and user instructions of the selected vCPUs
(default: all), divides them by --ops when given, and splits the kernel
instructions into cost categories with the first-match-wins glob map of
categories.txt.
sharing.so (recognised by its first line): the cache-line transfers to the
selected vCPUs, kernel/user, split by source (another selected vCPU, "own",
or any other, "other"), per category, per code site and per data line.
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
                elif len(w) == 4 and w[0] == 'utb':
                    pass	# user=1: for user-report.py
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


def parse_sharing(path):
    """sharing.so output -> (header, {vcpu: counts}, xfers, lines, lsites)"""
    header = None
    vcpus = {}
    xfers = []		# (dst, src, store, count, pc, site)
    lines = {}		# paddr -> (count, vaddr, data symbol)
    lsites = []		# (paddr, dst, src, store, count, pc, site)
    with open_or_die(path) as f:
        for lineno, line in enumerate(f, 1):
            w = line.split()
            try:
                if w[0] == 'sharing' and w[1] == 'window' and len(w) >= 6:
                    header = {'window': w[2], 'start_markers': int(w[4]),
                              'stop_markers': int(w[5])}
                elif w[0] == 'vcpu' and len(w) == 12:
                    vcpus[int(w[1])] = {k: int(v) for k, v in
                                        zip(w[2::2], w[3::2])}
                elif w[0] == 'xfer' and len(w) == 7:
                    xfers.append((int(w[1]), int(w[2]), w[3] == 'st',
                                  int(w[4]), int(w[5], 16), w[6]))
                elif w[0] == 'line' and len(w) == 5:
                    lines[int(w[1], 16)] = (int(w[2]), int(w[3], 16), w[4])
                elif w[0] == 'lsite' and len(w) == 8:
                    lsites.append((int(w[1], 16), int(w[2]), int(w[3]),
                                   w[4] == 'st', int(w[5]), int(w[6], 16),
                                   w[7]))
                else:
                    raise ValueError
            except (ValueError, IndexError):
                die(f'{path}:{lineno}: unrecognised line: {line.rstrip()}')
    if header is None:
        die(f'{path}: no "sharing window" header line')
    return header, vcpus, xfers, lines, lsites


def site_symbol(site):
    """'tcp_v4_rcv+0x1a2' -> 'tcp_v4_rcv'"""
    return site.rsplit('+0x', 1)[0]


def sharing_main(args):
    """Transfers per op to the selected vCPUs, split by where the line came
    from: another selected vCPU ('own' side) or any other vCPU."""
    header, vcpus, xfers, lines, lsites = parse_sharing(args.outfile)
    cpus = parse_cpus(args.cpus) if args.cpus else set(vcpus)
    missing = sorted(cpus - set(vcpus))
    if missing:
        die(f'vCPU(s) {missing} not in {args.outfile} '
            f'(has {sorted(vcpus)})')
    if header['window'] == 'on' and header['start_markers'] == 0:
        print('report.py: warning: no start marker was executed; '
              'all counts are zero', file=sys.stderr)
    rules = load_categories(args.categories)
    cache = {}
    ops = args.ops or 1
    tot = {'kernel': 0, 'user': 0, 'own': 0, 'other': 0, 'kernel_own': 0,
           'kernel_other': 0, 'user_own': 0, 'user_other': 0,
           'loads': 0, 'stores': 0}
    cats = {}
    syms = {}
    for dst, src, store, n, pc, site in xfers:
        if dst not in cpus:
            continue
        side = 'own' if src in cpus else 'other'
        ku = 'user' if site == '[user]' else 'kernel'
        tot[ku] += n
        tot[side] += n
        tot[f'{ku}_{side}'] += n
        tot['stores' if store else 'loads'] += n
        if ku == 'kernel':
            sym = site_symbol(site)
            c = categorise(sym, rules, cache)
            cc = cats.setdefault(c, {'own': 0, 'other': 0})
            cc[side] += n
        else:
            sym = '[user]'
        sc = syms.setdefault(sym, {'own': 0, 'other': 0, 'loads': 0,
                                   'stores': 0})
        sc[side] += n
        sc['stores' if store else 'loads'] += n
    total = tot['kernel'] + tot['user']
    kv = [vcpus[c] for c in cpus]
    if sum(v['kload'] + v['kstore'] for v in kv) != tot['kernel'] or \
            sum(v['uload'] + v['ustore'] for v in kv) != tot['user']:
        print('report.py: warning: per-site transfers do not add up to the '
              'per-vCPU totals', file=sys.stderr)
    cold = sum(v['cold'] for v in kv)
    # Hottest lines, as seen by the selected vCPUs.
    lsel = {}
    for paddr, dst, src, store, n, pc, site in lsites:
        if dst not in cpus:
            continue
        side = 'own' if src in cpus else 'other'
        e = lsel.setdefault(paddr, {'own': 0, 'other': 0, 'sites': {}})
        e[side] += n
        st = e['sites'].setdefault(site, {'own': 0, 'other': 0})
        st[side] += n
    top_lines = sorted(lsel.items(),
                       key=lambda x: (-(x[1]['own'] + x[1]['other']), x[0]))
    top_lines_own = sorted(((p, v) for p, v in top_lines if v['own']),
                           key=lambda x: (-x[1]['own'], x[0]))
    top_lines_own = top_lines_own[:args.top or 10]
    top_lines = top_lines[:args.top or 10]
    top_syms = sorted(syms.items(),
                      key=lambda x: (-(x[1]['own'] + x[1]['other']), x[0]))
    top_syms = top_syms[:args.top or 10]
    top_own = sorted(((s, v) for s, v in syms.items() if v['own']),
                     key=lambda x: (-x[1]['own'], x[0]))[:args.top or 10]

    def pct(n):
        return 100.0 * n / total if total else 0.0

    if args.json:
        out = {
            'kind': 'sharing',
            'window': header['window'],
            'markers': [header['start_markers'], header['stop_markers']],
            'cpus': sorted(cpus),
            'ops': args.ops,
            'transfers': total,
            'per_op': total / ops,
            'cold_per_op': cold / ops,
        }
        for k, n in tot.items():
            out[f'per_op_{k}'] = n / ops
        out['categories'] = {
            c: {'transfers': v['own'] + v['other'],
                'per_op': (v['own'] + v['other']) / ops,
                'per_op_own': v['own'] / ops,
                'per_op_other': v['other'] / ops,
                'percent': pct(v['own'] + v['other'])}
            for c, v in cats.items()}
        def site_json(s, v):
            return {'symbol': s, 'category':
                    cache.get(s, 'user' if s == '[user]' else OTHER),
                    'per_op': (v['own'] + v['other']) / ops,
                    'per_op_own': v['own'] / ops,
                    'per_op_other': v['other'] / ops,
                    'loads': v['loads'], 'stores': v['stores']}
        out['top'] = [site_json(s, v) for s, v in top_syms]
        out['top_own'] = [site_json(s, v) for s, v in top_own]
        def line_json(paddr, v):
            _, vaddr, data = lines.get(paddr, (0, 0, '-'))
            sites = sorted(v['sites'].items(),
                           key=lambda x: -(x[1]['own'] + x[1]['other']))[:5]
            return {
                'paddr': f'{paddr:#x}', 'vaddr': f'{vaddr:#x}', 'data': data,
                'per_op': (v['own'] + v['other']) / ops,
                'per_op_own': v['own'] / ops, 'per_op_other': v['other'] / ops,
                'sites': [{'site': st, 'per_op': (x['own'] + x['other']) / ops,
                           'per_op_own': x['own'] / ops}
                          for st, x in sites]}
        out['lines'] = [line_json(p, v) for p, v in top_lines]
        out['lines_own'] = [line_json(p, v) for p, v in top_lines_own]
        json.dump(out, sys.stdout, indent=1)
        print()
        return

    unit = 'xfers/op' if args.ops else 'xfers'
    print(f'sharing: window {header["window"]}, markers start '
          f'{header["start_markers"]} stop {header["stop_markers"]}, vCPUs '
          f'{",".join(map(str, sorted(cpus)))}'
          + (f', ops {args.ops:g}' if args.ops else ''))
    print('cache-line transfers TO these vCPUs; "own": the line came from '
          'another of them, "other": from a vCPU outside the list')
    print(f'{"":14} {"total":>10} {"own":>10} {"other":>10}   ({unit})')
    for k in ('kernel', 'user'):
        print(f'{k:14} {tot[k] / ops:10.2f} {tot[k + "_own"] / ops:10.2f} '
              f'{tot[k + "_other"] / ops:10.2f}')
    print(f'{"all":14} {total / ops:10.2f} {tot["own"] / ops:10.2f} '
          f'{tot["other"] / ops:10.2f}')
    print(f'loads {tot["loads"] / ops:.2f}, stores {tot["stores"] / ops:.2f},'
          f' cold misses {cold / ops:.2f} per op' if args.ops else '')
    if cats:
        print()
        print(f'{"category":14} {"total":>10} {"own":>10} {"other":>10} '
              f'{"percent":>8}')
        for c, v in sorted(cats.items(),
                           key=lambda x: -(x[1]['own'] + x[1]['other'])):
            n = v['own'] + v['other']
            print(f'{c:14} {n / ops:10.2f} {v["own"] / ops:10.2f} '
                  f'{v["other"] / ops:10.2f} {pct(n):7.1f}%')
    if top_syms:
        print()
        print(f'{"site (symbol)":40} {"category":14} {"total":>9} {"own":>9}'
              f' {"other":>9} {"ld":>6} {"st":>6}')
        for s, v in top_syms:
            n = v['own'] + v['other']
            cat = cache.get(s, 'user' if s == '[user]' else OTHER)
            print(f'{s:40} {cat:14} {n / ops:9.2f} {v["own"] / ops:9.2f} '
                  f'{v["other"] / ops:9.2f} {v["loads"] / ops:6.2f} '
                  f'{v["stores"] / ops:6.2f}')
    if top_own:
        print()
        print(f'{"site, by own (symbol)":40} {"category":14} {"own":>9}'
              f' {"total":>9}')
        for s, v in top_own:
            cat = cache.get(s, 'user' if s == '[user]' else OTHER)
            print(f'{s:40} {cat:14} {v["own"] / ops:9.2f} '
                  f'{(v["own"] + v["other"]) / ops:9.2f}')
    if top_lines:
        print()
        print(f'{"hottest lines (paddr)":22} {"total":>9} {"own":>9} '
              f'{"other":>9}  data / code sites')
        for paddr, v in top_lines:
            n = v['own'] + v['other']
            _, vaddr, data = lines.get(paddr, (0, 0, '-'))
            sites = sorted(v['sites'].items(),
                           key=lambda x: -(x[1]['own'] + x[1]['other']))[:4]
            desc = (data + ' ' if data != '-' else '') + ', '.join(
                f'{st} {(x["own"] + x["other"]) / ops:.2f}' for st, x in sites)
            print(f'{paddr:#22x} {n / ops:9.2f} {v["own"] / ops:9.2f} '
                  f'{v["other"] / ops:9.2f}  {desc}')


def is_sharing_file(path):
    with open_or_die(path) as f:
        return f.readline().startswith('sharing ')


def main():
    ap = argparse.ArgumentParser(
        description='Summarise an insncount or sharing output file.')
    ap.add_argument('outfile', help='file written by insncount.so or '
                    'sharing.so out=')
    ap.add_argument('--cpus', help='vCPUs to sum, e.g. 0-1,3 (default all)')
    ap.add_argument('--ops', type=float,
                    help='divide counts by this number of operations')
    ap.add_argument('--categories', default=DEFAULT_CATEGORIES,
                    help='category map (default: %(default)s)')
    ap.add_argument('--json', action='store_true', help='print JSON')
    ap.add_argument('--top', type=int, default=0, metavar='N',
                    help='also list the N largest kernel symbols (sharing: '
                    'the N top code sites and lines, default 10)')
    args = ap.parse_args()
    if args.ops is not None and args.ops <= 0:
        die('--ops must be > 0')
    if is_sharing_file(args.outfile):
        sharing_main(args)
        return

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
