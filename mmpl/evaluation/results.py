"""Run records (``results.json`` / ``test_results.json``) and their
aggregation over seeds, the one place where seeds are averaged.

A record (``RunResultsHook``) holds method, dataset, seed, protocol,
num_shots and metrics. A record is cut into measurements
``(dataset, metric, value)``: ``base`` / ``new`` for base-to-new, ``top1``
for each ``<dataset>/accuracy/top1`` of the other protocols. Measurements
of the same protocol, method, dataset, shot count and metric are averaged
over seeds (mean and sample standard deviation).
"""
import glob
import json
import os.path as osp
import statistics
from dataclasses import dataclass
from typing import (Dict, Iterable, Iterator, List, NamedTuple, Optional,
                    Sequence, Tuple)

from ..utils.errors import DataError, MissingFileError
from .protocols import (BASE_KEY, NEW_KEY, PROTOCOLS, TOP1_SUFFIX,
                        infer_protocol)

#: record file name -> the stage it comes from
RESULT_FILES = {'results.json': 'val', 'test_results.json': 'test'}


def record_protocol(record: dict) -> str:
    """The record's protocol, inferred from its metrics for records written
    before records carried one (or from configs without ``protocol``)."""
    return record.get('protocol') or infer_protocol(record.get('metrics', {}))


def _load(file: str) -> dict:
    with open(file) as f:
        try:
            record = json.load(f)
        except json.JSONDecodeError as exc:
            raise DataError(
                f'run record {file} is not valid JSON ({exc}). An '
                'interrupted run may have left it: move it away or run that '
                'run again') from exc
    if not isinstance(record, dict):
        raise DataError(f'run record {file} holds a '
                        f'{type(record).__name__}, not a run record. Remove '
                        'it from the folders given to the report')
    record['path'] = file
    return record


def find_results(paths: Iterable[str],
                 filename: Optional[str] = None) -> List[dict]:
    """Load the run records under ``paths`` (folders searched recursively,
    or the JSON files themselves).

    ``filename`` given: every file of that name. ``None``: each protocol's
    own records: ``results.json`` (the evaluation at the end of training)
    for b2n and few-shot, ``test_results.json`` (``tools/test.py``) for xd
    and dg; the other kind is skipped, so that a re-evaluated run does not
    count twice.
    """
    names = [filename] if filename else list(RESULT_FILES)
    records = []
    for path in paths:
        if osp.isfile(path):
            records.append(_load(path))
            continue
        files = sorted(f for name in names for f in glob.glob(
            osp.join(path, '**', name), recursive=True))
        if not files:
            raise MissingFileError(f'no {" or ".join(names)} under {path}')
        for file in files:
            record = _load(file)
            stage = RESULT_FILES.get(osp.basename(file))
            protocol = PROTOCOLS.get(record_protocol(record))
            if filename or protocol is None or protocol.stage == stage:
                records.append(record)
    return records


class MeasureKey(NamedTuple):
    """What is averaged over seeds."""
    protocol: str
    method: str
    dataset: str
    shots: Optional[int]  # few-shot only; None for the other protocols
    metric: str  # 'base', 'new' or 'top1'


def measurements(record: dict) -> Iterator[Tuple[str, str, float]]:
    """``(dataset, metric, value)`` of a record: ``base``/``new`` of
    base-to-new, ``top1`` of every ``<dataset>/accuracy/top1`` (or of an
    unnamed ``accuracy/top1``, for the record's dataset)."""
    own = record.get('dataset') or record.get('config') or 'unknown'
    for key, value in record.get('metrics', {}).items():
        if key == BASE_KEY:
            yield own, 'base', value
        elif key == NEW_KEY:
            yield own, 'new', value
        elif key.endswith(TOP1_SUFFIX):
            yield key[:-len(TOP1_SUFFIX)], 'top1', value
        elif key == TOP1_SUFFIX[1:]:
            yield own, 'top1', value


@dataclass
class SeedStats:
    """One measurement over seeds: mean, sample standard deviation (0 for
    one seed) and the seeds, sorted."""
    mean: float
    std: float
    seeds: Tuple[int, ...]


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate_seeds(records: Iterable[dict]) -> Dict[MeasureKey, SeedStats]:
    """Average every measurement over seeds. Two values for the same
    measurement and seed are an error naming both files."""
    values: Dict[MeasureKey, Dict[int, Tuple[float, str]]] = {}
    for record in records:
        protocol = record_protocol(record)
        if protocol not in PROTOCOLS:
            raise DataError(
                f'{record.get("path")}: unknown protocol {protocol!r}; '
                f'expected one of {", ".join(PROTOCOLS)} (config key '
                '`protocol`)')
        shots = record.get('num_shots') if protocol == 'fewshot' else None
        for dataset, metric, value in measurements(record):
            key = MeasureKey(protocol, record['method'], dataset, shots,
                             metric)
            seeds = values.setdefault(key, {})
            seed = record['seed']
            if seed in seeds:
                what = f' ({shots} shots)' if shots is not None else ''
                raise DataError(
                    f'two results for {key.method} on {dataset}{what} seed '
                    f'{seed}: {seeds[seed][1]} and {record.get("path")}')
            seeds[seed] = (float(value), record.get('path'))
    stats = {}
    for key, seeds in values.items():
        vals = [v for v, _ in seeds.values()]
        stats[key] = SeedStats(statistics.mean(vals), _std(vals),
                               tuple(sorted(seeds)))
    return stats
