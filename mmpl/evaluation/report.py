"""Aggregate base-to-new runs into the benchmark's table.

Each run leaves ``results.json`` (``RunResultsHook``): method, dataset, seed
and metrics. The table follows the CoCoOp protocol (PROTOCOL.md):

* per method and dataset: base and new accuracy averaged over seeds (with
  the sample standard deviation over seeds), HM = HM(mean base, mean new);
* the average row of a method: base and new averaged over its datasets, HM
  of those two averages — not the mean of per-dataset HMs.
"""
import csv
import glob
import json
import os
import os.path as osp
import statistics
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence

from .harmonic_mean import harmonic_mean

BASE_KEY = 'base/accuracy/top1'
NEW_KEY = 'new/accuracy/top1'
AVERAGE = 'average'


@dataclass
class B2NRow:
    """One table row: a method on a dataset (or its ``average``)."""
    method: str
    dataset: str
    base: float
    new: float
    hm: float
    base_std: float
    new_std: float
    seeds: List[int]


def find_results(paths: Iterable[str],
                 filename: str = 'results.json') -> List[dict]:
    """Load every run record under ``paths`` (folders searched
    recursively, or the JSON files themselves)."""
    records = []
    for path in paths:
        files = [path] if osp.isfile(path) else sorted(
            glob.glob(osp.join(path, '**', filename), recursive=True))
        if not files:
            raise FileNotFoundError(f'no {filename} under {path}')
        for file in files:
            with open(file) as f:
                record = json.load(f)
            record['path'] = file
            records.append(record)
    return records


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate_b2n(records: Iterable[dict]) -> List[B2NRow]:
    """Per (method, dataset) rows averaged over seeds, then one ``average``
    row per method. Records without base/new metrics are skipped; two runs
    with the same (method, dataset, seed) are an error."""
    runs: Dict[tuple, Dict[int, dict]] = {}
    for record in records:
        metrics = record.get('metrics', {})
        if BASE_KEY not in metrics or NEW_KEY not in metrics:
            continue
        key = (record['method'], record['dataset'])
        seeds = runs.setdefault(key, {})
        if record['seed'] in seeds:
            raise ValueError(f'two results for {key[0]} on {key[1]} seed '
                             f'{record["seed"]}: {seeds[record["seed"]]["path"]}'
                             f' and {record.get("path")}')
        seeds[record['seed']] = dict(metrics, path=record.get('path'))
    rows: List[B2NRow] = []
    for method in sorted({m for m, _ in runs}):
        method_rows = []
        for (m, dataset), seeds in sorted(runs.items()):
            if m != method:
                continue
            base = [s[BASE_KEY] for s in seeds.values()]
            new = [s[NEW_KEY] for s in seeds.values()]
            b, n = statistics.mean(base), statistics.mean(new)
            method_rows.append(B2NRow(method, dataset, b, n,
                                      harmonic_mean(b, n), _std(base),
                                      _std(new), sorted(seeds)))
        b = statistics.mean(r.base for r in method_rows)
        n = statistics.mean(r.new for r in method_rows)
        rows += method_rows
        rows.append(B2NRow(method, AVERAGE, b, n, harmonic_mean(b, n), 0.0,
                           0.0, sorted({s for r in method_rows
                                        for s in r.seeds})))
    return rows


def _cell(mean: float, std: float, show_std: bool) -> str:
    return f'{mean:.2f} ± {std:.2f}' if show_std else f'{mean:.2f}'


def to_markdown(rows: Sequence[B2NRow]) -> str:
    """The table in Markdown (± sample std over seeds when >1 seed)."""
    lines = ['| method | dataset | base | new | HM | seeds |',
             '|---|---|---|---|---|---|']
    for r in rows:
        many = len(r.seeds) > 1 and r.dataset != AVERAGE
        lines.append(
            f'| {r.method} | {r.dataset} | {_cell(r.base, r.base_std, many)} '
            f'| {_cell(r.new, r.new_std, many)} | {r.hm:.2f} | '
            f'{",".join(map(str, r.seeds))} |')
    return '\n'.join(lines) + '\n'


def write_csv(rows: Sequence[B2NRow], path: str) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['method', 'dataset', 'base', 'base_std', 'new',
                         'new_std', 'hm', 'seeds'])
        for r in rows:
            writer.writerow([r.method, r.dataset, f'{r.base:.4f}',
                             f'{r.base_std:.4f}', f'{r.new:.4f}',
                             f'{r.new_std:.4f}', f'{r.hm:.4f}',
                             ' '.join(map(str, r.seeds))])


def plot_b2n(rows: Sequence[B2NRow], path: str, title: str = '') -> None:
    """Bar plot of base / new / HM per method (the average rows)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    avg = [r for r in rows if r.dataset == AVERAGE]
    x = np.arange(len(avg))
    width = 0.27
    fig, ax = plt.subplots(figsize=(max(4.5, 1.6 * len(avg) + 1.5), 3.6))
    for i, (label, values) in enumerate(
        (('base', [r.base for r in avg]), ('new', [r.new for r in avg]),
         ('HM', [r.hm for r in avg]))):
        bars = ax.bar(x + (i - 1) * width, values, width, label=label)
        ax.bar_label(bars, fmt='%.1f', fontsize=7)
    ax.set_xticks(x, [r.method for r in avg])
    ax.set_ylabel('top-1 accuracy (%)')
    ax.set_ylim(0, 105)
    ax.legend(loc='upper right', ncols=3, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_b2n_report(rows: Sequence[B2NRow], out_dir: str,
                     title: str = '') -> Dict[str, str]:
    """Markdown + CSV + PNG into ``out_dir``; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = dict(markdown=osp.join(out_dir, 'b2n_table.md'),
                 csv=osp.join(out_dir, 'b2n_table.csv'),
                 png=osp.join(out_dir, 'b2n_plot.png'))
    with open(paths['markdown'], 'w') as f:
        f.write(to_markdown(rows))
    write_csv(rows, paths['csv'])
    plot_b2n(rows, paths['png'], title)
    return paths
