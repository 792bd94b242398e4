"""The user's own data: a CoOp split file, or one folder per class.

* :class:`CoOpCustomDataset`: a split file in the CoOp JSON format.
* :class:`CoOpFolderDataset`: ``<data_root>/<image_dir>/<class>/*``, split
  per class with CoOp's seeded rule.

``CoOpCustomDataset`` without a ``split_file`` builds a
``CoOpFolderDataset`` (the one name served both before), so existing
configs keep working.
"""
import os.path as osp
from typing import Any, Optional

from mmpretrain.registry import DATASETS

from ..utils.errors import MissingFileError
from .folders import generate_split
from .split_file import CoOpSplitDataset


@DATASETS.register_module()
class CoOpFolderDataset(CoOpSplitDataset):
    """One folder per class, split per class with CoOp's seeded rule (50%
    train, 20% val, 30% test; class folders sorted, labels in that order;
    see :func:`mmpl.datasets.folders.generate_split`).

    Args:
        data_root: the dataset folder.
        split: ``'train'``, ``'val'`` or ``'test'``.
        image_dir: the folder of the class folders, relative to
            ``data_root`` (default: ``''``, the data root itself).
        split_seed: seed of the split (same seed -> same split on every
            machine).
        template: prompt template (default ``'a photo of a {}.'``).
        slug: ``metainfo['dataset']`` (default ``'custom'``).
        **kwargs: see :class:`~mmpl.datasets.base.CoOpDatasetBase`.

    Class names are the folder names (underscores become spaces in
    prompts); pass ``metainfo=dict(classes=[...])`` to rename them.
    """

    def __init__(self,
                 data_root: str,
                 split: Optional[str] = None,
                 image_dir: str = '',
                 split_seed: int = 1,
                 **kwargs: Any) -> None:
        self.split_seed = split_seed
        super().__init__(data_root, split, split_file='', image_dir=image_dir,
                         **kwargs)

    def layout_hint(self, root: str) -> str:
        return ('expected one folder per class: '
                f'{osp.join(root, self._image_dir, "<class>", "<image>")}')

    def _read_annotations(self, root: str):
        if not osp.isdir(osp.join(root, self._image_dir)):
            raise MissingFileError(
                f'{type(self).__name__}: image root '
                f'{osp.join(root, self._image_dir)} does not exist; '
                f'{self.layout_hint(root)}')
        classes, splits = self._load_splits(root)
        self._split_entries = splits[self.split]
        return classes, self._image_dir, ''

    def _load_splits(self, root: str):
        image_root = osp.join(root, self._image_dir)
        splits = generate_split(image_root, seed=self.split_seed)
        return self._classes_from_splits(splits, image_root), splits


@DATASETS.register_module()
class CoOpCustomDataset(CoOpSplitDataset):
    """The user's data with a split file in the CoOp JSON format.

    Args:
        data_root: the dataset folder.
        split: ``'train'``, ``'val'`` or ``'test'``.
        split_file: the split file, relative to ``data_root``. Without it
            (None) this builds a :class:`CoOpFolderDataset` from the other
            arguments (``image_dir``, ``split_seed`` ...).
        image_dir: image root relative to ``data_root`` (default: ``''``,
            the data root itself).
        template: prompt template (default ``'a photo of a {}.'``).
        slug: ``metainfo['dataset']`` (default ``'custom'``).
        **kwargs: see :class:`~mmpl.datasets.base.CoOpDatasetBase`.

    Class names are the split file's names; pass
    ``metainfo=dict(classes=[...])`` to rename them.
    """

    def __new__(cls, data_root: Optional[str] = None, *args, **kwargs):
        # data_root is None only when copy/pickle re-creates an instance
        if (cls is CoOpCustomDataset and data_root is not None
                and kwargs.get('split_file') is None):
            kwargs.pop('split_file', None)
            return CoOpFolderDataset(data_root, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self,
                 data_root: str,
                 split: Optional[str] = None,
                 split_file: Optional[str] = None,
                 image_dir: str = '',
                 **kwargs: Any) -> None:
        super().__init__(data_root, split, split_file=split_file,
                         image_dir=image_dir, **kwargs)
