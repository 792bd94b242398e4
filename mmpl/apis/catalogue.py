"""mmpl's method catalogue: ``model-index.yml`` and the metafiles it
imports (``configs/<family>/metafile.yml``, OpenMMLab's format, what
``mim search mmpl`` reads), as plain records.

    from mmpl.apis import list_methods, list_models
    list_models('ctp-tft*eurosat')   # [ModelRecord(name='ctp-tft_vitb16_...
    list_methods()                   # one MethodRecord per paper

The metafiles are the one list of the methods, their papers and their
benchmark configs; the tools and the tests read it here. The numbers are
the papers' published ones (a method's 11-dataset base-to-new average, a
model's EuroSAT numbers where published), never mmpl's measurements, and
None where the literature the project quotes gives none. The files are
found where ``mmpl::`` configs are: ``mmpl/.mim`` of the package (copies in
a wheel, links in an editable install), else the checkout's root.
"""
import fnmatch
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional

import yaml

from ..scope import PACKAGE_DIR
from ..utils.errors import MissingFileError

MODEL_INDEX = 'model-index.yml'
METRICS = ('base/accuracy/top1', 'new/accuracy/top1', 'harmonic_mean')


@dataclass(frozen=True)
class MethodRecord:
    """A method (a metafile's Collection) and its paper.

    ``base``, ``new``, ``hm``: the paper's 11-dataset base-to-new average
    (None where not published exactly); ``notes``: what the numbers are
    and how mmpl implements the method."""
    name: str
    paper: str
    venue: str
    url: Optional[str]
    base: Optional[float]
    new: Optional[float]
    hm: Optional[float]
    notes: str = ''


@dataclass(frozen=True)
class ModelRecord:
    """A benchmark config (a metafile's Model).

    ``config``: the path as the metafile writes it (``configs/...``);
    ``config_file``: that path in this installation. ``base``, ``new``,
    ``hm``: the paper's numbers on ``published_on`` (None where the paper
    gives none for this config)."""
    name: str
    method: str
    paper: str
    venue: str
    config: str
    config_file: str
    protocol: str
    dataset: str
    shots: int
    base: Optional[float]
    new: Optional[float]
    hm: Optional[float]
    published_on: Optional[str]
    notes: str = ''

    @property
    def family(self) -> str:
        """The config family folder (``configs/<family>/``)."""
        return osp.basename(osp.dirname(self.config))


def catalogue_root() -> str:
    """The folder of ``model-index.yml``: the package's ``.mim`` (an
    installed mmpl), else the checkout holding the package."""
    for root in (osp.join(PACKAGE_DIR, '.mim'), osp.dirname(PACKAGE_DIR)):
        if osp.isfile(osp.join(root, MODEL_INDEX)):
            return root
    raise MissingFileError(
        f'{MODEL_INDEX} not found in {osp.join(PACKAGE_DIR, ".mim")} or '
        f'{osp.dirname(PACKAGE_DIR)}; reinstall mmpl (pip install .)')


def _read_yaml(path: str) -> dict:
    if not osp.isfile(path):
        raise MissingFileError(f'catalogue file {path} not found; reinstall '
                               'mmpl (pip install .)')
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f) or {}


def read_metafiles(root: Optional[str] = None) -> Dict[str, dict]:
    """Each metafile ``model-index.yml`` imports, as written (path relative
    to ``root`` -> its content), in the index's order."""
    root = root or catalogue_root()
    index = _read_yaml(osp.join(root, MODEL_INDEX))
    return {rel: _read_yaml(osp.join(root, rel))
            for rel in index.get('Import') or ()}


def _numbers(results) -> tuple:
    """(base, new, hm, dataset) of the first result, Nones without one."""
    if not results:
        return None, None, None, None
    metrics = results[0].get('Metrics') or {}
    return tuple(metrics.get(k) for k in METRICS) + (results[0]['Dataset'], )


def _method(entry: dict) -> MethodRecord:
    paper = entry.get('Paper') or {}
    base, new, hm, _ = _numbers(entry.get('Results'))
    return MethodRecord(entry['Name'], paper.get('Title', ''),
                        paper.get('Venue', ''), paper.get('URL'), base, new,
                        hm, entry.get('Notes', ''))


def _model(entry: dict, method: MethodRecord, root: str) -> ModelRecord:
    meta = entry.get('Metadata') or {}
    base, new, hm, dataset = _numbers(entry.get('Results'))
    return ModelRecord(
        entry['Name'], method.name, method.paper, method.venue,
        entry['Config'], osp.join(root, entry['Config']), meta['Protocol'],
        meta['Training Data'], meta['Shots'], base, new, hm, dataset,
        entry.get('Notes', ''))


def _matching(records: list, pattern: Optional[str]) -> list:
    """As mmpretrain's ``list_models``: a wildcard pattern matching the
    name's start (``pattern + '*'``)."""
    if pattern is None:
        return records
    names = set(fnmatch.filter([r.name for r in records], pattern + '*'))
    return [r for r in records if r.name in names]


def list_methods(pattern: Optional[str] = None) -> List[MethodRecord]:
    """The methods of the catalogue (one per paper), in the index's order;
    ``pattern``: a wildcard on the name's start, e.g. ``'CoOp'``."""
    methods = [_method(c) for meta in read_metafiles().values()
               for c in meta.get('Collections') or ()]
    return _matching(methods, pattern)


def list_models(pattern: Optional[str] = None) -> List[ModelRecord]:
    """The benchmark configs of the catalogue, in the index's order;
    ``pattern``: a wildcard on the name's start, as mmpretrain's
    ``list_models``, e.g. ``'ctp-tft*eurosat'``."""
    root = catalogue_root()
    metafiles = read_metafiles(root)
    methods = {c['Name']: _method(c) for meta in metafiles.values()
               for c in meta.get('Collections') or ()}
    models = [_model(m, methods[m['In Collection']], root)
              for meta in metafiles.values() for m in meta.get('Models') or ()]
    return _matching(models, pattern)
