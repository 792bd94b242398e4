"""The benchmark report: run records -> one table per protocol, written as
Markdown, CSV and a PNG plot.

Each run leaves ``results.json`` / ``test_results.json``
(``RunResultsHook``). :func:`~.results.find_results` loads them,
:func:`~.aggregate.build_tables` averages over seeds and applies each
protocol's rule (``aggregate.py``), :func:`write_report` writes
``<protocol>_table.md``, ``<protocol>_table.csv`` and
``<protocol>_plot.png``.
"""
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence

from ..utils.io import check_outputs, mark_outputs
from .aggregate import build_tables
from .plots import plot_table
from .protocols import PROTOCOLS
from .results import find_results
from .table import AVERAGE, B2NRow, Table, to_markdown, write_csv

__all__ = ['find_results', 'build_tables', 'write_report', 'write_reports',
           'aggregate_b2n', 'to_markdown', 'B2NRow', 'Table', 'AVERAGE']


def aggregate_b2n(records: Iterable[dict]) -> List[B2NRow]:
    """The base-to-new rows of ``records`` (per method: its datasets, then
    its average row)."""
    table = build_tables(records, ['b2n']).get('b2n')
    return table.rows if table else []


def report_files(protocol: str) -> List[str]:
    """The names :func:`write_report` writes for ``protocol``."""
    return [f'{protocol}_table.md', f'{protocol}_table.csv',
            f'{protocol}_plot.png']


def write_report(table: Table, out_dir: str,
                 title: str = '') -> Dict[str, str]:
    """Markdown + CSV + PNG of ``table`` into ``out_dir`` (files named
    after the protocol: :func:`report_files`); returns the paths. Refuses
    (before writing) to replace a file an mmpl tool did not write."""
    names = report_files(table.protocol)
    check_outputs(out_dir, names, '--out-dir')
    os.makedirs(out_dir, exist_ok=True)
    paths = dict(zip(('markdown', 'csv', 'png'),
                     (osp.join(out_dir, n) for n in names)))
    with open(paths['markdown'], 'w') as f:
        f.write(to_markdown(table))
    write_csv(table, paths['csv'])
    plot_table(table, paths['png'],
               title or PROTOCOLS[table.protocol].title)
    mark_outputs(out_dir, names)
    return paths


def write_reports(paths: Sequence[str],
                  out_dir: str,
                  filename: Optional[str] = None,
                  protocols: Optional[Sequence[str]] = None,
                  title: str = '') -> Dict[str, Table]:
    """Find the records under ``paths``, build each protocol's table and
    write it into ``out_dir``; returns the tables by protocol."""
    tables = build_tables(find_results(paths, filename), protocols)
    check_outputs(out_dir, [n for p in tables for n in report_files(p)],
                  '--out-dir')  # every table's files, before the first
    for table in tables.values():
        write_report(table, out_dir, title)
    return tables
