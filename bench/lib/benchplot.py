# SPDX-License-Identifier: GPL-2.0
"""PNG plots of a run-bench summary, drawn with gnuplot.

plot(outdir, designs, summary, metrics, title) -> [png paths]
Writes the data files and gnuplot scripts next to the PNGs (outdir/plots/),
so a plot can be redrawn or restyled by hand.
"""
import os
import subprocess


# Distinct colours for up to 18 stacked categories.
_COLORS = ['#4477aa', '#ee6677', '#228833', '#ccbb44', '#66ccee', '#aa3377',
           '#bbbbbb', '#332288', '#ddcc77', '#117733', '#88ccee', '#882255',
           '#44aa99', '#999933', '#cc6677', '#000000', '#ee8866', '#77aadd']


def _terminal():
    p = subprocess.run(['gnuplot', '-e', 'set terminal'], capture_output=True,
                       text=True)
    text = p.stdout + p.stderr
    if 'pngcairo' in text:
        return 'pngcairo size 900,560 noenhanced font "sans,10"'
    return 'png size 900,560 noenhanced'


def _q(s):
    return '"' + str(s).replace('\\', '\\\\').replace('"', '\\"') + '"'


def _gnuplot(script_path, script):
    with open(script_path, 'w') as f:
        f.write(script)
    p = subprocess.run(['gnuplot', script_path], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise RuntimeError(f'gnuplot {script_path}: {p.stderr.strip()}')


def _plot_sharing(pdir, outdir, term, designs, summ, title):
    """Cache-line transfers per op: server<-server, server<-client, client
    (medians, bars min..max of server<-server)."""
    have = [d for d in designs
            if summ[d].get('server_xfer_per_op_median') is not None]
    if not have:
        return []
    keys = [('server_xfer_own', 'server <- server'),
            ('server_xfer_other', 'server <- client'),
            ('client_xfer', 'client (all)')]
    dat = os.path.join(pdir, 'transfers_per_op.dat')
    with open(dat, 'w') as f:
        f.write('# design ' + ' '.join(f'{k}_median {k}_min {k}_max'
                                       for k, _ in keys) + '\n')
        for d in have:
            row = [_q(d)]
            for k, _ in keys:
                xs = summ[d].get(f'{k}_per_op') or [0]
                row += [str(summ[d].get(f'{k}_per_op_median') or 0),
                        str(min(xs)), str(max(xs))]
            f.write(' '.join(row) + '\n')
    png = os.path.join(outdir, 'transfers_per_op.png')
    cols = ', \\\n     '.join(
        f"{_q(dat) if i == 0 else chr(39) * 2} using {3 * i + 2}:"
        f"{3 * i + 3}:{3 * i + 4}{':xtic(1)' if i == 0 else ''} title {_q(t)}"
        for i, (_, t) in enumerate(keys))
    _gnuplot(os.path.join(pdir, 'transfers_per_op.gp'), f'''
set terminal {term}
set output {_q(png)}
set title {_q('cache-line transfers per operation (median, bars: min..max) - '
              + title)}
set ylabel "transfers/op"
set yrange [0:*]
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.7 border -1
set grid ytics
set key outside top center horizontal
plot {cols}
''')
    return [png]


def plot(outdir, designs, summ, metrics, title):
    pdir = os.path.join(outdir, 'plots')
    os.makedirs(pdir, exist_ok=True)
    term = _terminal()
    pngs = []

    # ops/s per design: median, error bars from min to max.
    rows = [(i, d, summ[d]['ops_per_s']) for i, d in enumerate(designs)
            if summ[d].get('ops_per_s')]
    if 'time' in metrics and rows:
        dat = os.path.join(pdir, 'ops_per_s.dat')
        with open(dat, 'w') as f:
            f.write('# idx design median min max\n')
            for i, d, xs in rows:
                f.write(f'{i} {_q(d)} {summ[d]["ops_per_s_median"]} '
                        f'{min(xs)} {max(xs)}\n')
        png = os.path.join(outdir, 'ops_per_s.png')
        _gnuplot(os.path.join(pdir, 'ops_per_s.gp'), f'''
set terminal {term}
set output {_q(png)}
set title {_q('ops/s (median, bars: min..max) - ' + title)}
set ylabel "operations/s"
set yrange [0:*]
set xrange [-0.6:{len(designs) - 0.4}]
set style fill solid 0.5 border -1
set boxwidth 0.6
set grid ytics
unset key
plot {_q(dat)} using 1:3:xtic(2) with boxes lc rgb "#4477aa", \\
     '' using 1:3:4:5 with yerrorbars lc rgb "black" pt 0
''')
        pngs.append(png)

    if 'sharing' in metrics:
        pngs += _plot_sharing(pdir, outdir, term, designs, summ, title)
    if 'insns' not in metrics:
        return pngs

    # Instructions per op: server/client x kernel/user, clustered.
    keys = [('server_kernel_per_op_median', 'server kernel'),
            ('server_user_per_op_median', 'server user'),
            ('client_kernel_per_op_median', 'client kernel'),
            ('client_user_per_op_median', 'client user')]
    have = [d for d in designs if summ[d].get('server_kernel_per_op_median')]
    if have:
        dat = os.path.join(pdir, 'insns_per_op.dat')
        with open(dat, 'w') as f:
            f.write('# design ' + ' '.join(k for k, _ in keys) + '\n')
            for d in have:
                f.write(_q(d) + ' ' + ' '.join(
                    str(summ[d].get(k) or 0) for k, _ in keys) + '\n')
        png = os.path.join(outdir, 'insns_per_op.png')
        cols = ', \\\n     '.join(
            f"{_q(dat) if i == 0 else chr(39) * 2} using {i + 2}"
            f"{':xtic(1)' if i == 0 else ''} title {_q(t)}"
            for i, (_, t) in enumerate(keys))
        _gnuplot(os.path.join(pdir, 'insns_per_op.gp'), f'''
set terminal {term}
set output {_q(png)}
set title {_q('guest instructions per operation (median) - ' + title)}
set ylabel "instructions/op"
set yrange [0:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.7 border -1
set grid ytics
set key outside top center horizontal
plot {cols}
''')
        pngs.append(png)

    # Server kernel instructions per op, stacked by category.
    cats = {}
    for d in have:
        for c, v in (summ[d].get('server_categories_per_op') or {}).items():
            cats[c] = max(cats.get(c, 0), v or 0)
    order = sorted(cats, key=lambda c: -cats[c])
    if have and order:
        dat = os.path.join(pdir, 'server_categories.dat')
        with open(dat, 'w') as f:
            f.write('design ' + ' '.join(_q(c) for c in order) + '\n')
            for d in have:
                cp = summ[d].get('server_categories_per_op') or {}
                f.write(_q(d) + ' ' + ' '.join(
                    str(cp.get(c) or 0) for c in order) + '\n')
        png = os.path.join(outdir, 'server_categories.png')
        _gnuplot(os.path.join(pdir, 'server_categories.gp'), f'''
set terminal {term}
set output {_q(png)}
set title {_q('server kernel instructions per op by category - ' + title)}
set ylabel "instructions/op"
set yrange [0:*]
set style data histograms
set style histogram rowstacked
set style fill solid 0.8 border -1
set boxwidth 0.6
set grid ytics
set key outside right
set key autotitle columnheader
colors = "{' '.join(_COLORS)}"
plot for [i=2:{len(order) + 1}] {_q(dat)} using i:xtic(1) \
     lc rgb word(colors, (i - 2) % words(colors) + 1)
''')
        pngs.append(png)
    return pngs
