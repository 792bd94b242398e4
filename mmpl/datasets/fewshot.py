"""Few-shot subset of any dataset, and the index-subset wrapper it builds on.

From the CoOp benchmark protocol (``DatasetBase.generate_fewshot_dataset``):
group the samples by label in order of first appearance; for each label in
that order keep ``random.sample(items, K)`` when the class has at least K
samples, else all of them. Project's reading: the generator is a local
``random.Random(seed)`` (never the global one), and the chosen samples can be
cached as paths relative to the image root so the cache is portable.

The wrappers are modelled on mmengine's dataset wrappers
(``ClassBalancedDataset``): they hold the inner dataset in ``self.dataset``,
keep a list of inner indices, and apply the *innermost* dataset's pipeline,
so they nest (``BaseNewDataset(dataset=FewShotDataset(dataset=...))``).
"""
import copy
import json
import os
import os.path as osp
import random
import tempfile
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import Compose
from mmpretrain.registry import DATASETS

from ..utils.checks import check_int


def build_inner_dataset(dataset: Any) -> Any:
    """Build a config dict with ``DATASETS.build``; pass a dataset through.

    Any object with ``__len__``, ``get_data_info`` and ``metainfo`` is a
    dataset (mmengine/mmpretrain datasets and the mmpl wrappers).
    """
    if isinstance(dataset, dict):
        return DATASETS.build(dataset)
    if all(hasattr(dataset, a) for a in ('__len__', 'get_data_info',
                                         'metainfo')):
        return dataset
    raise TypeError('`dataset` must be a dataset config dict or a dataset '
                    f'instance, got {type(dataset).__name__}')


def innermost_dataset(dataset: Any) -> Any:
    """Follow ``.dataset`` through nested wrappers to the real dataset."""
    while hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    return dataset


def image_root_of(dataset: Any) -> str:
    """The root that cached image paths are relative to.

    Project's convention: the innermost dataset's ``data_prefix['img_path']``
    if set, else its ``data_root``. For :class:`CoOpSplitDataset` this is the
    image root (e.g. ``<data_root>/2750``), so cached paths equal the split
    file's ``rel_path``.
    """
    inner = innermost_dataset(dataset)
    prefix = getattr(inner, 'data_prefix', None) or {}
    root = prefix.get('img_path') if isinstance(prefix, dict) else None
    root = root or getattr(inner, 'data_root', None)
    if not root:
        raise ValueError(
            f'{type(inner).__name__} has neither data_prefix["img_path"] nor '
            'data_root: cannot express its image paths relative to a root')
    return root


def labels_of(dataset: Any) -> np.ndarray:
    """Integer labels of all samples of ``dataset``, in index order."""
    if hasattr(dataset, 'get_gt_labels'):
        return np.asarray(dataset.get_gt_labels(), dtype=np.int64)
    return np.asarray([int(dataset.get_data_info(i)['gt_label'])
                       for i in range(len(dataset))], dtype=np.int64)


class IndexSubsetWrapper:
    """Base of the mmpl wrappers: a view on ``indices`` of an inner dataset,
    with optional relabelling.

    Subclasses implement :meth:`_select` returning the kept inner indices and
    an optional ``{old_label: new_label}`` map, and may override
    :meth:`_subset_metainfo`. Like mmengine's ``ClassBalancedDataset`` it is
    not a ``BaseDataset`` (``get_subset`` would be ambiguous).

    Args:
        dataset: a dataset instance or a config dict for ``DATASETS.build``.
        lazy_init: defer :meth:`full_init` (the inner dataset's and the
            selection) to the first access.
    """

    def __init__(self, dataset: Union[Any, dict], lazy_init: bool = False):
        self.dataset = build_inner_dataset(dataset)
        self._indices: List[int] = []
        self._label_map: Optional[Dict[int, int]] = None
        self._gt_labels: np.ndarray = np.zeros(0, dtype=np.int64)
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    # ---------------------------------------------------------------- hooks
    def _select(self, labels: np.ndarray):
        """Return ``(kept inner indices, {old: new label} or None)``."""
        raise NotImplementedError

    def _subset_metainfo(self, metainfo: dict) -> dict:
        return metainfo

    # ------------------------------------------------------------ protocol
    def full_init(self) -> None:
        """Fully initialise the inner dataset, then select the subset."""
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        labels = labels_of(self.dataset)
        indices, label_map = self._select(labels)
        self._indices = [int(i) for i in indices]
        self._label_map = label_map
        kept = labels[self._indices] if self._indices else labels[:0]
        if label_map is not None:
            kept = np.asarray([label_map[int(lb)] for lb in kept],
                              dtype=np.int64)
        self._gt_labels = kept
        self._fully_initialized = True

    @property
    def metainfo(self) -> dict:
        """A copy of the inner metainfo, adapted by the wrapper."""
        return self._subset_metainfo(copy.deepcopy(self.dataset.metainfo))

    @property
    def pipeline(self) -> Compose:
        """The innermost dataset's pipeline (identity if it has none)."""
        return getattr(innermost_dataset(self.dataset), 'pipeline',
                       None) or Compose([])

    @property
    def test_mode(self) -> bool:
        return bool(getattr(innermost_dataset(self.dataset), 'test_mode',
                            False))

    @property
    def indices(self) -> List[int]:
        """Indices of the kept samples in the inner dataset."""
        self.full_init()
        return list(self._indices)

    def __len__(self) -> int:
        self.full_init()
        return len(self._indices)

    def get_data_info(self, idx: int) -> dict:
        """The inner dataset's data info (copied), relabelled if needed."""
        self.full_init()
        info = dict(self.dataset.get_data_info(self._indices[idx]))
        if self._label_map is not None:
            info['gt_label'] = self._label_map[int(info['gt_label'])]
        return info

    def get_gt_labels(self) -> np.ndarray:
        self.full_init()
        return self._gt_labels.copy()

    def get_cat_ids(self, idx: int) -> List[int]:
        self.full_init()
        return [int(self._gt_labels[idx])]

    def prepare_data(self, idx: int) -> Any:
        return self.pipeline(self.get_data_info(idx))

    def __getitem__(self, idx: int) -> Any:
        """Apply the innermost pipeline; in train mode refetch a random
        sample when the pipeline returns ``None`` (as mmengine does)."""
        self.full_init()
        if self.test_mode:
            data = self.prepare_data(idx)
            if data is None:
                raise RuntimeError('Test time pipeline should not get `None` '
                                   'data_sample')
            return data
        max_refetch = getattr(innermost_dataset(self.dataset), 'max_refetch',
                              1000)
        for _ in range(max_refetch + 1):
            data = self.prepare_data(idx)
            if data is not None:
                return data
            idx = np.random.randint(0, len(self))
        raise RuntimeError(f'Cannot find valid image after {max_refetch}! '
                           'Please check your image path and pipeline')

    def get_subset_(self, indices):
        raise NotImplementedError(
            f'{type(self).__name__} does not support get_subset(_): apply it '
            'to the wrapped dataset (indices=...) instead')

    get_subset = get_subset_

    def __repr__(self) -> str:
        n = len(self) if self._fully_initialized else 'not initialised'
        return (f'{type(self).__name__}(samples={n}, '
                f'dataset={type(self.dataset).__name__})')


def fewshot_indices(labels: Sequence[int], num_shots: int,
                    seed: int) -> List[int]:
    """CoOp's ``generate_fewshot_dataset`` on a label array (one rule).

    Indices grouped by label in order of first appearance; per label, in that
    order, ``rng.sample(items, num_shots)`` if the class has at least
    ``num_shots`` items, else all items; ``rng = random.Random(seed)``.
    """
    groups: 'OrderedDict[int, List[int]]' = OrderedDict()
    for idx, label in enumerate(labels):
        groups.setdefault(int(label), []).append(idx)
    rng = random.Random(seed)
    kept: List[int] = []
    for items in groups.values():
        if len(items) >= num_shots:
            kept.extend(rng.sample(items, num_shots))
        else:
            kept.extend(items)
    return kept


@DATASETS.register_module()
class FewShotDataset(IndexSubsetWrapper):
    """K samples per class of any dataset (CoOp few-shot protocol).

    Args:
        dataset: dataset instance or config dict (any registered dataset,
            e.g. ``CoOpEuroSAT``, mmpretrain's ``CustomDataset``, another
            mmpl wrapper).
        num_shots: K >= 1 samples per class (classes with fewer keep all).
        seed: seed of the local ``random.Random``.
        cache_file: optional JSON cache ``{"num_shots", "seed", "paths"}``
            with image paths relative to :func:`image_root_of` the inner
            dataset. If it exists it is read (and the same samples are used,
            in its order); otherwise the sampled list is written there. An
            existing file is never overwritten.
        lazy_init: defer loading and sampling to the first access.

    The protocol's validation set uses ``num_shots=min(K, 4)``; that is the
    config's business, not this class's.
    """

    def __init__(self,
                 dataset: Union[Any, dict],
                 num_shots: int,
                 seed: int = 1,
                 cache_file: Optional[str] = None,
                 lazy_init: bool = False):
        check_int('num_shots', num_shots, owner='FewShotDataset')
        self.num_shots = num_shots
        self.seed = seed
        self.cache_file = cache_file
        super().__init__(dataset, lazy_init=lazy_init)

    def _relative_paths(self, indices: List[int]) -> List[str]:
        root = image_root_of(self.dataset)
        return [
            osp.relpath(self.dataset.get_data_info(i)['img_path'], start=root)
            .replace(os.sep, '/') for i in indices
        ]

    def _select(self, labels: np.ndarray):
        if self.cache_file and osp.exists(self.cache_file):
            return self._indices_from_cache(self.cache_file), None
        indices = fewshot_indices(labels, self.num_shots, self.seed)
        if self.cache_file:
            self._write_json(self.cache_file, indices, overwrite=False)
        return indices, None

    def _indices_from_cache(self, path: str) -> List[int]:
        with open(path, encoding='utf-8') as f:
            cache = json.load(f)
        if (cache.get('num_shots') != self.num_shots
                or cache.get('seed') != self.seed):
            raise ValueError(
                f'few-shot cache {path} was made with num_shots='
                f'{cache.get("num_shots")}, seed={cache.get("seed")}, but '
                f'num_shots={self.num_shots}, seed={self.seed} is asked; use '
                'another cache_file or delete this one')
        index_of: Dict[str, int] = {}
        for i, rel in enumerate(self._relative_paths(
                list(range(len(self.dataset))))):
            index_of.setdefault(rel, i)
        indices = []
        for rel in cache['paths']:
            if rel not in index_of:
                raise ValueError(
                    f'few-shot cache {path} lists {rel!r}, which is not in '
                    f'the dataset (image root {image_root_of(self.dataset)}); '
                    'the cache belongs to another dataset/split')
            indices.append(index_of[rel])
        return indices

    def _write_json(self, path: str, indices: List[int],
                    overwrite: bool) -> None:
        """Write ``{"num_shots", "seed", "paths"}`` atomically; with
        ``overwrite=False`` an existing file is left untouched."""
        payload = dict(num_shots=self.num_shots, seed=self.seed,
                       paths=self._relative_paths(indices))
        folder = osp.dirname(osp.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix='.fewshot-', suffix='.json',
                                   dir=folder)
        try:
            with os.fdopen(fd, 'w', encoding='utf-8') as f:
                json.dump(payload, f, indent=1)
            if overwrite:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)  # atomic, fails if it exists
                except FileExistsError:
                    pass  # another process wrote it first: keep theirs
                except OSError:  # no hard links on this file system
                    try:
                        with open(path, 'x', encoding='utf-8') as f:
                            json.dump(payload, f, indent=1)
                    except FileExistsError:
                        pass
        finally:
            if osp.exists(tmp):
                os.remove(tmp)

    def export_samples(self, path: str, overwrite: bool = False) -> None:
        """Write the chosen samples in the cache format (usable as
        ``cache_file``). Refuses to replace an existing file unless
        ``overwrite=True``."""
        self.full_init()
        if osp.exists(path) and not overwrite:
            raise FileExistsError(f'{path} exists; pass overwrite=True to '
                                  'replace it')
        self._write_json(path, self._indices, overwrite=True)

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] +
                f', num_shots={self.num_shots}, seed={self.seed})')
