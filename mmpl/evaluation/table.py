"""A report table (rows of method x dataset, one column per reported value)
and its Markdown and CSV forms."""
import csv
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional

AVERAGE = 'average'


@dataclass(frozen=True)
class Column:
    """A reported value: ``key`` names it in the CSV, ``label`` in the
    Markdown; ``has_std``: it is averaged over seeds (derived values such as
    HM are not); ``shots``: the shot count of a few-shot column."""
    key: str
    label: str
    has_std: bool = True
    shots: Optional[int] = None


@dataclass
class Cell:
    """Mean over seeds and its sample standard deviation (None where the
    value is derived, e.g. HM or an average over datasets)."""
    mean: float
    std: Optional[float] = None


@dataclass
class Row:
    """A method on a dataset, or the method's ``average`` row."""
    method: str
    dataset: str
    cells: Dict[str, Cell]
    seeds: List[int]

    def mean(self, key: str) -> Optional[float]:
        cell = self.cells.get(key)
        return None if cell is None else cell.mean


class B2NRow(Row):
    """A base-to-new row: ``base``, ``new`` (means over seeds, with their
    standard deviations) and ``hm``."""

    @property
    def base(self) -> float:
        return self.cells['base'].mean

    @property
    def new(self) -> float:
        return self.cells['new'].mean

    @property
    def hm(self) -> float:
        return self.cells['hm'].mean

    @property
    def base_std(self) -> Optional[float]:
        return self.cells['base'].std

    @property
    def new_std(self) -> Optional[float]:
        return self.cells['new'].std


@dataclass
class Table:
    """The report of one protocol; ``note`` says what its average covers."""
    protocol: str
    columns: List[Column]
    rows: List[Row] = field(default_factory=list)
    note: str = ''

    def row(self, method: str, dataset: str) -> Row:
        for r in self.rows:
            if (r.method, r.dataset) == (method, dataset):
                return r
        raise KeyError(f'no row for {method} on {dataset}')

    def averages(self) -> 'Table':
        """The same table with the average rows only."""
        return replace(self, rows=[r for r in self.rows
                                   if r.dataset == AVERAGE])


def _cell(cell: Optional[Cell], show_std: bool) -> str:
    if cell is None:
        return '-'
    if show_std and cell.std is not None:
        return f'{cell.mean:.2f} ± {cell.std:.2f}'
    return f'{cell.mean:.2f}'


def to_markdown(table: Table) -> str:
    """The table in Markdown (± the sample std over seeds when a row has
    more than one seed), then its note."""
    labels = [c.label for c in table.columns]
    lines = ['| method | dataset | ' + ' | '.join(labels) + ' | seeds |',
             '|' + '---|' * (len(labels) + 3)]
    for r in table.rows:
        many = len(r.seeds) > 1
        cells = [_cell(r.cells.get(c.key), many and c.has_std)
                 for c in table.columns]
        lines.append(f'| {r.method} | {r.dataset} | ' + ' | '.join(cells) +
                     f' | {",".join(map(str, r.seeds))} |')
    text = '\n'.join(lines) + '\n'
    return text + (f'\n{table.note}\n' if table.note else '')


def write_csv(table: Table, path: str) -> None:
    """One line per row: method, dataset, each column (and its ``_std``
    when averaged over seeds) to 4 decimals, the seeds."""
    header = ['method', 'dataset']
    for c in table.columns:
        header += [c.key, f'{c.key}_std'] if c.has_std else [c.key]
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header + ['seeds'])
        for r in table.rows:
            line = [r.method, r.dataset]
            for c in table.columns:
                cell = r.cells.get(c.key)
                line.append('' if cell is None else f'{cell.mean:.4f}')
                if c.has_std:
                    line.append('' if cell is None or cell.std is None else
                                f'{cell.std:.4f}')
            writer.writerow(line + [' '.join(map(str, r.seeds))])
