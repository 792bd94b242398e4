"""Datasets of the CoOp benchmark and the few-shot / base-to-new wrappers.

Importing this package registers in mmpretrain's ``DATASETS`` the readers
``CoOpSplitDataset``, ``CoOpCustomDataset``, ``CoOpFolderDataset``,
``CoOpImageNet``,
``CoOpCaltech101``, ``CoOpOxfordPets``, ``CoOpStanfordCars``,
``CoOpFlowers102``, ``CoOpFood101``, ``CoOpFGVCAircraft``, ``CoOpSUN397``,
``CoOpDTD``, ``CoOpEuroSAT``, ``CoOpUCF101``, ``CoOpImageNetV2``,
``CoOpImageNetSketch``, ``CoOpImageNetA``, ``CoOpImageNetR``, the wrappers
``FewShotDataset`` and ``BaseNewDataset``, in ``TRANSFORMS``
``CheckedLoadImageFromFile`` and in ``DATA_SAMPLERS`` ``SeededSampler``.
"""
from .base import READERS, SPLITS, CoOpDatasetBase
from .base_new import BaseNewDataset, base_new_labels
from .catalogue import CARDS, DatasetCard, Download
from .custom import CoOpCustomDataset, CoOpFolderDataset
from .fewshot import FewShotDataset, fewshot_indices
from .fgvc_aircraft import CoOpFGVCAircraft
from .folders import generate_split, list_images, list_subdirs
from .imagenet import (CoOpImageFolderDataset, CoOpImageNet, CoOpImageNetA,
                       CoOpImageNetR, CoOpImageNetSketch, CoOpImageNetV2,
                       imagenet_classnames, imagenet_wnids, read_classnames,
                       write_classnames)
from .samplers import SeededIndex, SeededSampler
from .split_file import (CALTECH101_CLASSNAMES, EUROSAT_CLASSNAMES,
                         CoOpCaltech101, CoOpDTD, CoOpEuroSAT, CoOpFlowers102,
                         CoOpFood101, CoOpOxfordPets, CoOpSplitDataset,
                         CoOpStanfordCars, CoOpSUN397, CoOpUCF101)
from .templates import DATASET_TEMPLATES, DEFAULT_TEMPLATE, get_template
from .transforms import CheckedLoadImageFromFile
from .wrappers import IndexSubsetWrapper

__all__ = [
    'DATASET_TEMPLATES', 'DEFAULT_TEMPLATE', 'get_template', 'READERS',
    'SPLITS', 'Download', 'DatasetCard', 'CARDS', 'CoOpDatasetBase',
    'CoOpSplitDataset', 'CoOpCustomDataset', 'CoOpFolderDataset',
    'CoOpImageFolderDataset', 'CoOpImageNet',
    'CoOpCaltech101', 'CoOpOxfordPets', 'CoOpStanfordCars', 'CoOpFlowers102',
    'CoOpFood101', 'CoOpFGVCAircraft', 'CoOpSUN397', 'CoOpDTD', 'CoOpEuroSAT',
    'CoOpUCF101', 'CoOpImageNetV2', 'CoOpImageNetSketch', 'CoOpImageNetA',
    'CoOpImageNetR', 'EUROSAT_CLASSNAMES', 'CALTECH101_CLASSNAMES',
    'imagenet_classnames', 'imagenet_wnids', 'read_classnames',
    'write_classnames', 'generate_split', 'list_images', 'list_subdirs',
    'FewShotDataset', 'IndexSubsetWrapper', 'fewshot_indices',
    'BaseNewDataset', 'base_new_labels', 'CheckedLoadImageFromFile',
    'SeededIndex', 'SeededSampler',
]
