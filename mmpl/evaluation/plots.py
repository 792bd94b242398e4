"""PNG plots of the report tables (matplotlib, no display needed):

* b2n: base / new / HM bars per method (average rows);
* fewshot: accuracy vs shots, one curve per method, one panel for the
  average and one per dataset;
* xd / dg: top-1 bars per dataset (source, targets, average), one bar per
  method.
"""
import math
from typing import List

from .table import AVERAGE, Table


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _finish(fig, ax, path: str, title: str) -> None:
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot().close(fig)


def _grouped_bars(ax, groups: List[str], series: List[str], values) -> None:
    """``values[i][j]``: series i in group j (None: no bar)."""
    import numpy as np
    x = np.arange(len(groups))
    width = 0.8 / max(len(series), 1)
    for i, label in enumerate(series):
        heights = [v if v is not None else 0.0 for v in values[i]]
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, heights,
                      width, label=label)
        if len(groups) * len(series) <= 30:
            ax.bar_label(bars, fmt='%.1f', fontsize=7)
    ax.set_xticks(x, groups, rotation=30 if len(groups) > 6 else 0,
                  ha='right' if len(groups) > 6 else 'center')
    ax.set_ylabel('top-1 accuracy (%)')
    ax.set_ylim(0, 105)


def plot_b2n(table: Table, path: str, title: str = '') -> None:
    """Bars of base / new / HM per method (the average rows)."""
    plt = pyplot()
    avg = table.averages().rows
    fig, ax = plt.subplots(figsize=(max(4.5, 1.6 * len(avg) + 1.5), 3.6))
    _grouped_bars(ax, [r.method for r in avg], ['base', 'new', 'HM'],
                  [[r.mean(k) for r in avg] for k in ('base', 'new', 'hm')])
    ax.legend(loc='upper right', ncols=3, fontsize=8)
    _finish(fig, ax, path, title)


def plot_fewshot(table: Table, path: str, title: str = '') -> None:
    """Accuracy vs shots (log2 axis), one curve per method; panels: the
    average, then each dataset."""
    plt = pyplot()
    columns = [c for c in table.columns if c.shots is not None]
    panels = [AVERAGE] + sorted({r.dataset for r in table.rows} - {AVERAGE},
                                key=[r.dataset for r in table.rows].index)
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(3.2 * ncols, 2.8 * nrows))
    methods = sorted({r.method for r in table.rows})
    for ax, panel in zip(axes.flat, panels):
        for method in methods:
            rows = [r for r in table.rows
                    if (r.method, r.dataset) == (method, panel)]
            points = [(c.shots, rows[0].mean(c.key)) for c in columns
                      if rows and rows[0].mean(c.key) is not None]
            if points:
                ax.plot(*zip(*points), marker='o', label=method)
        ax.set_xscale('log', base=2)
        ax.set_xticks([c.shots for c in columns],
                      [str(c.shots) for c in columns])
        ax.set_xlabel('shots per class', fontsize=8)
        ax.set_ylabel('top-1 (%)', fontsize=8)
        ax.set_title(panel, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis('off')
    axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_transfer(table: Table, path: str, title: str = '') -> None:
    """Top-1 bars per dataset (in table order, average last), one bar per
    method."""
    plt = pyplot()
    datasets: List[str] = []
    for r in table.rows:
        if r.dataset not in datasets and r.dataset != AVERAGE:
            datasets.append(r.dataset)
    datasets.append(AVERAGE)
    methods = sorted({r.method for r in table.rows})
    values = [[next((r.mean('top1') for r in table.rows
                     if (r.method, r.dataset) == (m, d)), None)
               for d in datasets] for m in methods]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.25 * len(datasets) *
                                        (len(methods) + 1) + 2), 3.8))
    _grouped_bars(ax, datasets, methods, values)
    ax.legend(loc='upper right', fontsize=7, ncols=min(len(methods), 4))
    _finish(fig, ax, path, title)


PLOTTERS = {'b2n': plot_b2n, 'fewshot': plot_fewshot, 'xd': plot_transfer,
            'dg': plot_transfer}


def plot_table(table: Table, path: str, title: str = '') -> None:
    """The protocol's plot of ``table`` as a PNG at ``path``."""
    PLOTTERS[table.protocol](table, path, title)
