"""Base-to-new class split of any dataset.

From the CoOp benchmark protocol (CoCoOp ``subsample_classes``): sort the
label ids, the first ``ceil(n/2)`` are *base*, the rest *new*; keep the
samples of one half and relabel it from 0 in sorted order. ``n`` is the
number of classes in the inner dataset's ``metainfo['classes']`` (not the
labels that happen to occur), so train/val/test splits agree.
"""
import math
from typing import Any, Dict, List, Tuple, Union

import numpy as np
from mmpretrain.registry import DATASETS

from ..utils.checks import check_choice
from ..utils.errors import ConfigError, DataError
from .wrappers import IndexSubsetWrapper

SUBSETS: Tuple[str, ...] = ('base', 'new', 'all')


def base_new_labels(num_classes: int, subset: str) -> List[int]:
    """Old labels of ``subset`` in new-label order (the one rule)."""
    check_choice('subset', subset, SUBSETS)
    labels = list(range(num_classes))
    m = math.ceil(num_classes / 2)
    return {'base': labels[:m], 'new': labels[m:], 'all': labels}[subset]


@DATASETS.register_module()
class BaseNewDataset(IndexSubsetWrapper):
    """Keep the base or new classes of any dataset, relabelled from 0.

    Args:
        dataset: dataset instance or config dict (may be another wrapper,
            e.g. ``FewShotDataset``).
        subset: ``'base'``, ``'new'`` or ``'all'`` (everything unchanged).
        lazy_init: defer loading to the first access.

    ``metainfo['classes']`` becomes the subset's names in the new label
    order; the other metainfo keys (``template``, ``dataset`` ...) are kept.
    ``metainfo['base_new']`` records the subset and
    ``metainfo['class_indices']`` the original labels of the kept classes.
    """

    def __init__(self,
                 dataset: Union[Any, dict],
                 subset: str = 'base',
                 lazy_init: bool = False):
        check_choice('subset', subset, SUBSETS, owner='BaseNewDataset')
        self.subset = subset
        super().__init__(dataset, lazy_init=lazy_init)

    def _inner_classes(self) -> Tuple[str, ...]:
        classes = self.dataset.metainfo.get('classes')
        if classes is None and hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()  # e.g. CustomDataset finds them here
            classes = self.dataset.metainfo.get('classes')
        if classes is None:
            raise ConfigError(
                f'BaseNewDataset: {type(self.dataset).__name__} has no '
                "metainfo['classes']; pass classes=... to it")
        return tuple(classes)

    def _kept_labels(self) -> List[int]:
        classes = self._inner_classes()
        if len(classes) < 2 and self.subset != 'all':
            raise DataError(
                f'BaseNewDataset: {type(self.dataset).__name__} has '
                f'{len(classes)} class(es) {list(classes)}; a base/new split '
                'needs at least 2. Check the data root (one folder per '
                "class), or use subset='all'")
        return base_new_labels(len(classes), self.subset)

    def _select(self, labels: np.ndarray):
        if self.subset == 'all':
            return list(range(len(labels))), None
        label_map: Dict[int, int] = {
            old: new for new, old in enumerate(self._kept_labels())}
        indices = [i for i, lb in enumerate(labels) if int(lb) in label_map]
        return indices, label_map

    def _subset_metainfo(self, metainfo: dict) -> dict:
        kept = self._kept_labels()
        classes = self._inner_classes()
        metainfo['classes'] = tuple(classes[i] for i in kept)
        metainfo['base_new'] = self.subset
        metainfo['class_indices'] = tuple(kept)
        return metainfo

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', subset={self.subset!r})'
