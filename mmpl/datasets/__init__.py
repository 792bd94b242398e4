"""Datasets of the CoOp benchmark and the few-shot / base-to-new wrappers.

Importing this package registers ``CoOpSplitDataset``, ``CoOpEuroSAT``,
``FewShotDataset`` and ``BaseNewDataset`` in mmpretrain's ``DATASETS``.
"""
from .base_new import BaseNewDataset, base_new_labels
from .coop_split import EUROSAT_CLASSNAMES, CoOpEuroSAT, CoOpSplitDataset
from .fewshot import FewShotDataset, IndexSubsetWrapper, fewshot_indices
from .miniature import MINIATURE_WRITERS, register_writer, write_miniature
from .templates import DATASET_TEMPLATES, DEFAULT_TEMPLATE, get_template

__all__ = [
    'DATASET_TEMPLATES', 'DEFAULT_TEMPLATE', 'get_template',
    'CoOpSplitDataset', 'CoOpEuroSAT', 'EUROSAT_CLASSNAMES',
    'FewShotDataset', 'IndexSubsetWrapper', 'fewshot_indices',
    'BaseNewDataset', 'base_new_labels',
    'write_miniature', 'register_writer', 'MINIATURE_WRITERS',
]
