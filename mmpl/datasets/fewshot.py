"""Few-shot subset of any dataset: CoOp's sampling rule and its wrapper.

From the CoOp benchmark protocol (``DatasetBase.generate_fewshot_dataset``):
group the samples by label in order of first appearance; for each label in
that order keep ``random.sample(items, K)`` when the class has at least K
samples, else all of them. Project's reading: the generator is a local
``random.Random(seed)`` (never the global one), and the chosen samples can be
cached as paths relative to the image root so the cache is portable.

:class:`FewShotDataset` is an
:class:`~mmpl.datasets.wrappers.IndexSubsetWrapper`.
"""
import json
import logging
import os
import os.path as osp
import random
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
from mmpretrain.registry import DATASETS

from ..utils.checks import check_int
from ..utils.errors import DataError, ExistingFileError
from ..utils.io import write_json_atomic
from .wrappers import IndexSubsetWrapper, image_root_of


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
        self._check_class_counts(labels)
        if self.cache_file:
            self._write_json(self.cache_file, indices, overwrite=False)
        return indices, None

    def _check_class_counts(self, labels: np.ndarray) -> None:
        """An empty class is an error; one warning names the classes with
        fewer than K images (they keep all of theirs, as in CoOp, so the
        run is not K-shot)."""
        names = (getattr(self.dataset, 'metainfo', None) or {}).get(
            'classes') or ()
        counts = np.bincount(np.asarray(labels, dtype=np.int64),
                             minlength=len(names))
        if (counts == 0).any():
            empty = [names[c] if c < len(names) else c
                     for c in np.flatnonzero(counts == 0)]
            raise DataError(
                f'FewShotDataset: class {empty[0]!r} of '
                f'{type(self.dataset).__name__} '
                f'({image_root_of(self.dataset)})'
                f' has no images ({len(empty)} such class(es): an empty class '
                'folder?). Add images to it or remove the folder')
        short = [(int(n), c) for c, n in enumerate(counts)
                 if 0 < n < self.num_shots]
        if not short:
            return
        from mmengine.logging import print_log
        fewest, label = min(short)
        name = names[label] if label < len(names) else label
        print_log(
            f'FewShotDataset: {len(short)} of {int((counts > 0).sum())} '
            f'classes have fewer than num_shots={self.num_shots} images '
            f'(fewest: {name!r} with {fewest}); they keep all their images, '
            f'so the run is not {self.num_shots}-shot for them',
            logger='current', level=logging.WARNING)

    def _indices_from_cache(self, path: str) -> List[int]:
        with open(path, encoding='utf-8') as f:
            cache = json.load(f)
        if (cache.get('num_shots') != self.num_shots
                or cache.get('seed') != self.seed):
            raise DataError(
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
                raise DataError(
                    f'few-shot cache {path} lists {rel!r}, which is not in '
                    f'the dataset (image root {image_root_of(self.dataset)}); '
                    'the cache belongs to another dataset/split')
            indices.append(index_of[rel])
        return indices

    def _write_json(self, path: str, indices: List[int],
                    overwrite: bool) -> None:
        """Write ``{"num_shots", "seed", "paths"}`` atomically; with
        ``overwrite=False`` an existing file is left untouched."""
        write_json_atomic(path, dict(num_shots=self.num_shots, seed=self.seed,
                                     paths=self._relative_paths(indices)),
                          replace=overwrite)

    def export_samples(self, path: str, overwrite: bool = False) -> None:
        """Write the chosen samples in the cache format (usable as
        ``cache_file``). Refuses to replace an existing file unless
        ``overwrite=True``."""
        self.full_init()
        if osp.exists(path) and not overwrite:
            raise ExistingFileError(f'{path} exists; pass overwrite=True to '
                                    'replace it')
        self._write_json(path, self._indices, overwrite=True)

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] +
                f', num_shots={self.num_shots}, seed={self.seed})')
