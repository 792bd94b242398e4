"""Each protocol's table from the per-seed averages (PROTOCOL.md):

* ``b2n``: per dataset base, new (mean ± std over seeds) and HM of the two
  means; the average row: base and new averaged over the datasets, HM of
  those two averages (not the mean of the per-dataset HMs).
* ``fewshot``: per dataset one column per shot count; the average row: per
  shot count, the mean over the datasets run with it.
* ``xd`` / ``dg``: per dataset top-1 (the source ImageNet first); the
  average row: the mean over the target datasets, the source excluded.
"""
import statistics
from collections import defaultdict
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from .harmonic_mean import harmonic_mean
from .protocols import PROTOCOLS, dataset_order, get_protocol
from .results import MeasureKey, SeedStats, aggregate_seeds, record_protocol
from .table import AVERAGE, B2NRow, Cell, Column, Row, Table

Stats = Dict[MeasureKey, SeedStats]

B2N_COLUMNS = [Column('base', 'base'), Column('new', 'new'),
               Column('hm', 'HM', has_std=False)]
TOP1_COLUMNS = [Column('top1', 'top-1')]


def _cell(s: SeedStats) -> Cell:
    return Cell(s.mean, s.std)


def _by_method(stats: Stats) -> Dict[str, Dict[str, Dict[MeasureKey,
                                                          SeedStats]]]:
    """method -> dataset -> that dataset's measurements, both sorted."""
    grouped: Dict[str, Dict[str, Stats]] = defaultdict(dict)
    for key, s in stats.items():
        grouped[key.method].setdefault(key.dataset, {})[key] = s
    return {m: dict(sorted(grouped[m].items(),
                           key=lambda kv: dataset_order(kv[0])))
            for m in sorted(grouped)}


def _seeds(rows: Iterable[Row]) -> List[int]:
    return sorted({s for r in rows for s in r.seeds})


def _mean(values: Sequence[Optional[float]]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def b2n_table(stats: Stats) -> Table:
    """Base-to-new: see the module docstring. Datasets without both base
    and new results are left out."""
    rows: List[Row] = []
    for method, datasets in _by_method(stats).items():
        method_rows = []
        for dataset, measures in datasets.items():
            by_metric = {k.metric: s for k, s in measures.items()}
            if 'base' not in by_metric or 'new' not in by_metric:
                continue
            base, new = by_metric['base'], by_metric['new']
            method_rows.append(B2NRow(
                method, dataset,
                dict(base=_cell(base), new=_cell(new),
                     hm=Cell(harmonic_mean(base.mean, new.mean))),
                sorted(set(base.seeds) | set(new.seeds))))
        if not method_rows:
            continue
        b = statistics.mean(r.base for r in method_rows)
        n = statistics.mean(r.new for r in method_rows)
        rows += method_rows + [B2NRow(
            method, AVERAGE,
            dict(base=Cell(b), new=Cell(n), hm=Cell(harmonic_mean(b, n))),
            _seeds(method_rows))]
    return Table('b2n', list(B2N_COLUMNS), rows)


def _shots_column(shots: Optional[int]) -> Column:
    if shots is None:
        return Column('shots_all', 'all shots')
    return Column(f'shots{shots}', '1 shot' if shots == 1 else
                  f'{shots} shots', shots=shots)


def fewshot_table(stats: Stats) -> Table:
    """Few-shot: see the module docstring."""
    shots = sorted({k.shots for k in stats},
                   key=lambda k: (k is None, k or 0))
    columns = [_shots_column(k) for k in shots]
    rows: List[Row] = []
    for method, datasets in _by_method(stats).items():
        method_rows = []
        for dataset, measures in datasets.items():
            cells = {_shots_column(k.shots).key: _cell(s)
                     for k, s in measures.items() if k.metric == 'top1'}
            seeds = {x for k, s in measures.items() for x in s.seeds}
            method_rows.append(Row(method, dataset, cells, sorted(seeds)))
        average = {}
        for c in columns:
            mean = _mean([r.mean(c.key) for r in method_rows])
            if mean is not None:
                average[c.key] = Cell(mean)
        rows += method_rows + [Row(method, AVERAGE, average,
                                   _seeds(method_rows))]
    return Table('fewshot', columns, rows,
                 note='average: per shot count, the mean over the datasets '
                 'run with that many shots.')


def transfer_table(stats: Stats, protocol: str) -> Table:
    """Cross-dataset (``xd``) or domain generalisation (``dg``): see the
    module docstring."""
    proto = get_protocol(protocol)
    rows: List[Row] = []
    notes = []
    for method, datasets in _by_method(stats).items():
        method_rows = [
            Row(method, dataset, {'top1': _cell(s)}, list(s.seeds))
            for dataset, measures in datasets.items()
            for k, s in measures.items() if k.metric == 'top1'
        ]
        targets = [r for r in method_rows if r.dataset != proto.source]
        if targets:
            method_rows.append(Row(
                method, AVERAGE,
                {'top1': Cell(statistics.mean(r.mean('top1')
                                              for r in targets))},
                _seeds(method_rows)))
        missing = [d for d in proto.targets
                   if d not in {r.dataset for r in targets}]
        if missing:
            notes.append(f'{method}: average over {len(targets)} of '
                         f'{len(proto.targets)} targets (missing: '
                         f'{", ".join(missing)}).')
        rows += method_rows
    note = (f'average: the mean over the target datasets; {proto.source} '
            'is the source (trained on, not averaged).')
    return Table(protocol, list(TOP1_COLUMNS), rows,
                 note=' '.join([note] + notes))


BUILDERS: Dict[str, Callable[[Stats], Table]] = {
    'b2n': b2n_table,
    'fewshot': fewshot_table,
    'xd': lambda stats: transfer_table(stats, 'xd'),
    'dg': lambda stats: transfer_table(stats, 'dg'),
}


def build_tables(records: Iterable[dict],
                 protocols: Optional[Sequence[str]] = None
                 ) -> Dict[str, Table]:
    """One table per protocol found in ``records`` (or only ``protocols``),
    in the order b2n, fewshot, xd, dg; tables without rows are left out."""
    if protocols:
        for name in protocols:
            get_protocol(name)
        records = [r for r in records if record_protocol(r) in protocols]
    by_protocol: Dict[str, Stats] = defaultdict(dict)
    for key, s in aggregate_seeds(records).items():
        by_protocol[key.protocol][key] = s
    tables = {}
    for name in PROTOCOLS:
        if name in by_protocol and (not protocols or name in protocols):
            table = BUILDERS[name](by_protocol[name])
            if table.rows:
                tables[name] = table
    return tables
