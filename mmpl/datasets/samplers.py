"""Augmentations that depend on (seed, epoch, sample) only, so that a
resumed run is exact with dataloader workers.

mmengine seeds each dataloader worker once, when it starts. Persistent
workers (``persistent_workers=True``, in every shipped config) then carry
their random state from epoch to epoch, and a run resumed at epoch k
starts fresh workers whose random state is that of epoch 1: its crops and
flips differ from the uninterrupted run's. :class:`SeededSampler` (mmengine's
``DefaultSampler``, same order) hands out indices that carry a seed made
from the run seed, the epoch and the sample's position, and mmpl's datasets
(readers and wrappers) reseed ``random``, NumPy and torch from it before
running the pipeline of that sample in a worker. Resume restores the epoch
(``DistSamplerSeedHook``), hence the same seeds. In the main process
(``num_workers=0``) nothing is reseeded: its random state is saved in the
checkpoint and restored on resume already.
"""
import random
from typing import Callable, Iterator

import numpy as np
import torch
from mmengine.dataset import DefaultSampler
from mmpretrain.registry import DATA_SAMPLERS


class SeededIndex(int):
    """A sample index carrying the seed of the sample's augmentation."""

    def __new__(cls, index: int, seed: int):
        obj = super().__new__(cls, index)
        obj.seed = seed
        return obj

    def __reduce__(self):  # to the worker processes
        return SeededIndex, (int(self), self.seed)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed from (run seed, epoch, sample index)."""
    return int(np.random.SeedSequence(
        [seed % 2**32, epoch, index]).generate_state(1)[0])


@DATA_SAMPLERS.register_module()
class SeededSampler(DefaultSampler):
    """``DefaultSampler`` (same arguments, same order of samples) whose
    indices carry the seed of each sample's augmentation
    (:class:`SeededIndex`), a function of the sampler's seed, the epoch
    and the index."""

    def __iter__(self) -> Iterator[int]:
        for index in super().__iter__():
            yield SeededIndex(index, sample_seed(self.seed, self.epoch, index))


def call_seeded(fetch: Callable[[int], object], idx: int):
    """``fetch(idx)``; first, in a dataloader worker, reseed ``random``,
    NumPy and torch from ``idx.seed`` when ``idx`` is a
    :class:`SeededIndex`."""
    seed = getattr(idx, 'seed', None)
    if seed is not None and torch.utils.data.get_worker_info() is not None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
    return fetch(int(idx))
