"""The four protocols of the CoOp-family benchmark (PROTOCOL.md): what each
one evaluates, where its numbers come from and what its average covers.

* ``b2n`` base-to-new: train on the base classes, report base, new and HM
  per dataset; the average row is the HM of the averaged base and new.
* ``fewshot``: 1/2/4/8/16 shots of all classes, accuracy on the full test
  set; the average row is per shot count, over the datasets.
* ``xd`` cross-dataset transfer: the ImageNet model (16 shots, all classes)
  on the other 10 datasets; the average covers the 10 targets.
* ``dg`` domain generalisation: the same model on ImageNetV2, -Sketch, -A
  and -R; the average covers the 4 variants.

ImageNet itself is the *source* of xd and dg: reported, not averaged.
"""
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

from ..constants import BASE_KEY, NEW_KEY  # noqa: F401 (public here too)
from ..utils.errors import ConfigError

#: the 11 datasets of the benchmark, in the papers' table order
BENCHMARK_DATASETS = ('imagenet', 'caltech101', 'oxford_pets',
                      'stanford_cars', 'flowers102', 'food101',
                      'fgvc_aircraft', 'sun397', 'dtd', 'eurosat', 'ucf101')
SOURCE_DATASET = 'imagenet'
XD_TARGETS = BENCHMARK_DATASETS[1:]
DG_TARGETS = ('imagenetv2', 'imagenet_sketch', 'imagenet_a', 'imagenet_r')
DATASET_ORDER = BENCHMARK_DATASETS + DG_TARGETS


@dataclass(frozen=True)
class Protocol:
    """One protocol.

    Attributes:
        name: the config's ``protocol`` value and the record's.
        title: what the report calls it.
        stage: where its numbers come from: ``'val'`` = the evaluation at the
            end of training (``results.json``), ``'test'`` = ``tools/test.py``
            (``test_results.json``).
        source: the training dataset when it is reported but not averaged.
        targets: the datasets the protocol's average is meant to cover
            (empty: whatever datasets were run).
    """
    name: str
    title: str
    stage: str
    source: Optional[str] = None
    targets: Tuple[str, ...] = ()


PROTOCOLS = {
    'b2n': Protocol('b2n', 'base-to-new generalisation', 'val'),
    'fewshot': Protocol('fewshot', 'few-shot classification', 'val'),
    'xd': Protocol('xd', 'cross-dataset transfer (trained on ImageNet)',
                   'test', SOURCE_DATASET, XD_TARGETS),
    'dg': Protocol('dg', 'domain generalisation (trained on ImageNet)',
                   'test', SOURCE_DATASET, DG_TARGETS),
}

TOP1_SUFFIX = '/accuracy/top1'


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; an unknown name is a user error."""
    if name not in PROTOCOLS:
        raise ConfigError(f'unknown protocol {name!r}; expected one of '
                          f'{", ".join(PROTOCOLS)} (the config key '
                          '`protocol`)')
    return PROTOCOLS[name]


def infer_protocol(metrics: Mapping[str, float]) -> str:
    """The protocol of metrics from a config without a ``protocol`` key:
    base and new splits -> b2n; an ImageNet variant -> dg; several
    datasets -> xd; one dataset -> fewshot."""
    if BASE_KEY in metrics and NEW_KEY in metrics:
        return 'b2n'
    datasets = {k[:-len(TOP1_SUFFIX)] for k in metrics
                if k.endswith(TOP1_SUFFIX)}
    if datasets & set(DG_TARGETS):
        return 'dg'
    return 'xd' if len(datasets) > 1 else 'fewshot'


def dataset_order(name: str) -> tuple:
    """Sort key: the benchmark's datasets in table order, others after them
    alphabetically."""
    if name in DATASET_ORDER:
        return (0, DATASET_ORDER.index(name), '')
    return (1, 0, name)
