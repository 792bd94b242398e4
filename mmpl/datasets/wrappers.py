"""The wrapper base of mmpl's protocol datasets, and its helpers.

Modelled on mmengine's dataset wrappers (``ClassBalancedDataset``):
a wrapper holds the inner dataset in ``self.dataset``, keeps a list of
inner indices, and applies the *innermost* dataset's pipeline, so wrappers
nest (``BaseNewDataset(dataset=FewShotDataset(dataset=...))``). The two
protocol rules built on it: :mod:`.fewshot` (K shots per class) and
:mod:`.base_new` (base / new classes).
"""
import copy
from typing import Any, Dict, List, Optional, Union

import numpy as np
from mmengine.dataset import Compose
from mmpretrain.registry import DATASETS

from ..utils.errors import ConfigError
from .samplers import call_seeded


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
    raise ConfigError('`dataset` must be a dataset config dict or a dataset '
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
        raise ConfigError(
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
        sample when the pipeline returns ``None`` (as mmengine does). A
        :class:`~mmpl.datasets.samplers.SeededIndex` seeds the
        augmentation (exact resume with workers)."""
        return call_seeded(self._getitem, idx)

    def _getitem(self, idx: int) -> Any:
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
