"""Readers for datasets in the CoOp split-file format.

From the CoOp benchmark protocol: a dataset lives in its own folder
(``data_root``, e.g. ``data/eurosat``) with an image root (``2750`` for
EuroSAT) and a split file ``split_zhou_<Name>.json`` holding
``{"train": [[rel_path, label, classname], ...], "val": [...], "test": [...]}``
where ``rel_path`` is relative to the image root, labels are 0-based and
contiguous and class names are the readable names.

Project's reading: there is ONE reader (:class:`CoOpSplitDataset`); a dataset
is a subclass that only sets class attributes (``SLUG``, ``SPLIT_FILE``,
``IMAGE_DIR``, ``TEMPLATE``, ``CLASSNAME_MAP``, the layout/source hints used in
error messages). Class names are taken from the entries of *all* splits of the
file (so that train/val/test agree on ``metainfo['classes']``), after the
per-dataset :meth:`CoOpSplitDataset.normalize_classname` hook. Every problem
with the data is an error with a one-line, actionable message; nothing is
skipped silently.
"""
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from .templates import DATASET_TEMPLATES, DEFAULT_TEMPLATE

SPLITS: Tuple[str, ...] = ('train', 'val', 'test')

COOP_DATASETS_MD = ('https://github.com/KaiyangZhou/CoOp/blob/main/'
                    'DATASETS.md')

#: EuroSAT folder name -> readable name (CoOp's ``NEW_CLASSNAMES``).
EUROSAT_CLASSNAMES: Dict[str, str] = {
    'AnnualCrop': 'Annual Crop Land',
    'Forest': 'Forest',
    'HerbaceousVegetation': 'Herbaceous Vegetation Land',
    'Highway': 'Highway or Road',
    'Industrial': 'Industrial Buildings',
    'Pasture': 'Pasture Land',
    'PermanentCrop': 'Permanent Crop Land',
    'Residential': 'Residential Buildings',
    'River': 'River',
    'SeaLake': 'Sea or Lake',
}


@DATASETS.register_module()
class CoOpSplitDataset(BaseDataset):
    """A dataset read from a CoOp split file (``split_zhou_*.json``).

    Use it directly with ``split_file``/``image_dir`` (and optionally
    ``slug`` to pick a protocol template), or through a subclass such as
    :class:`CoOpEuroSAT` that fixes them.

    Args:
        data_root: the dataset's own folder, e.g. ``data/eurosat``. Made
            absolute, so ``img_path`` of every sample is absolute.
        split: ``'train'``, ``'val'`` or ``'test'``.
        split_file: split file, relative to ``data_root`` (default: the
            class's ``SPLIT_FILE``).
        image_dir: image root, relative to ``data_root``; the split file's
            ``rel_path`` is relative to it (default: the class's
            ``IMAGE_DIR``).
        template: prompt template stored in ``metainfo['template']``
            (default: the class's ``TEMPLATE``, else the protocol template of
            the slug, else ``'a photo of a {}.'``).
        slug: dataset slug stored in ``metainfo['dataset']`` (default: the
            class's ``SLUG``).
        pipeline: mmpretrain transforms.
        **kwargs: passed to :class:`mmpretrain.datasets.BaseDataset`
            (``test_mode``, ``lazy_init``, ``serialize_data``, ``metainfo``,
            ``indices`` ...).

    ``load_data_list()`` returns ``[dict(img_path=<absolute path>,
    gt_label=int), ...]`` in split-file order. ``metainfo`` holds
    ``classes`` (tuple, index = label), ``template`` (str) and ``dataset``
    (slug); it is available right after construction, even with
    ``lazy_init=True`` (the split file is read in ``__init__``; image files
    are checked when the data list is loaded).
    """

    #: dataset slug (key of ``DATASET_TEMPLATES``), ``metainfo['dataset']``
    SLUG: str = 'custom'
    #: split file, relative to ``data_root``
    SPLIT_FILE: Optional[str] = None
    #: image root, relative to ``data_root``
    IMAGE_DIR: Optional[str] = None
    #: prompt template; ``None`` -> ``DATASET_TEMPLATES[SLUG]``
    TEMPLATE: Optional[str] = None
    #: raw class name -> readable name (applied by ``normalize_classname``)
    CLASSNAME_MAP: Dict[str, str] = {}
    #: how images are laid out under the image root (for error messages)
    IMAGE_LAYOUT: str = '<rel_path from the split file>'
    #: where the data comes from (for error messages)
    SOURCE: str = f'see CoOp DATASETS.md ({COOP_DATASETS_MD})'

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 split_file: Optional[str] = None,
                 image_dir: Optional[str] = None,
                 template: Optional[str] = None,
                 slug: Optional[str] = None,
                 pipeline: Sequence = (),
                 **kwargs: Any) -> None:
        if split not in SPLITS:
            raise ValueError(f'{type(self).__name__}: unknown split '
                             f'{split!r}; expected one of {list(SPLITS)}')
        split_file = split_file if split_file is not None else self.SPLIT_FILE
        image_dir = image_dir if image_dir is not None else self.IMAGE_DIR
        if split_file is None or image_dir is None:
            raise ValueError(f'{type(self).__name__}: `split_file` and '
                             '`image_dir` are required (relative to '
                             'data_root)')
        self.split = split
        self.slug = slug if slug is not None else self.SLUG
        data_root = osp.abspath(osp.expanduser(str(data_root)))
        self._check_layout(data_root, split_file, image_dir)

        split_path = osp.join(data_root, split_file)
        splits = self._read_split_file(split_path)
        classes = self._classes_from_splits(splits, split_path)
        self._entries: Optional[List[list]] = splits[split]

        if template is None:
            template = self.TEMPLATE or DATASET_TEMPLATES.get(
                self.slug, DEFAULT_TEMPLATE)
        user_meta = dict(kwargs.pop('metainfo', None) or {})
        super().__init__(
            ann_file=split_file,
            metainfo={'classes': classes, **user_meta},
            data_root=data_root,
            data_prefix=dict(img_path=image_dir),
            pipeline=pipeline,
            **kwargs)
        # set after __init__: mmengine would try to read str metainfo values
        # as meta files (and warn)
        self._metainfo.setdefault('template', template)
        self._metainfo.setdefault('dataset', self.slug)

    # ------------------------------------------------------------------
    # hooks a subclass may override
    @classmethod
    def normalize_classname(cls, name: str) -> str:
        """Map a class name of the split file to the readable name.

        Default: ``CLASSNAME_MAP.get(name, name)`` (idempotent: readable names
        pass through unchanged).
        """
        return cls.CLASSNAME_MAP.get(name, name)

    # ------------------------------------------------------------------
    def _layout_hint(self, root: str, split_file: str, image_dir: str) -> str:
        return (f'expected {osp.join(root, image_dir, self.IMAGE_LAYOUT)} '
                f'and {osp.join(root, split_file)}')

    def _check_layout(self, root: str, split_file: str,
                      image_dir: str) -> None:
        name = type(self).__name__
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'{name}: data root {root} does not exist; '
                f'{self._layout_hint(root, split_file, image_dir)} '
                f'({self.SOURCE})')
        split_path = osp.join(root, split_file)
        if not osp.isfile(split_path):
            raise FileNotFoundError(
                f'{name}: split file {split_path} not found; the official '
                f'split_zhou_*.json files are published with CoOp\'s '
                f'DATASETS.md instructions ({COOP_DATASETS_MD}); put the file '
                f'at that path')
        image_root = osp.join(root, image_dir)
        if not osp.isdir(image_root):
            raise FileNotFoundError(
                f'{name}: image root {image_root} does not exist; '
                f'{self._layout_hint(root, split_file, image_dir)} '
                f'({self.SOURCE})')

    @staticmethod
    def _read_split_file(path: str) -> Dict[str, List[list]]:
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'split file {path} is not valid JSON: '
                             f'{e}') from None
        if not isinstance(data, dict) or not any(s in data for s in SPLITS):
            raise ValueError(f'split file {path} must be a JSON object with '
                             f'keys {list(SPLITS)}')
        splits = {}
        for split in SPLITS:
            entries = data.get(split, [])
            for entry in entries:
                if not (isinstance(entry, (list, tuple)) and len(entry) == 3
                        and isinstance(entry[0], str)
                        and isinstance(entry[1], int)
                        and not isinstance(entry[1], bool)):
                    raise ValueError(
                        f'split file {path}: bad entry {entry!r} in '
                        f'{split!r}; expected [rel_path, int label, '
                        f'classname]')
            splits[split] = entries
        return splits

    @classmethod
    def _classes_from_splits(cls, splits: Dict[str, List[list]],
                             path: str) -> Tuple[str, ...]:
        """Readable class names, index = label, from all splits of a file.

        Errors when one label carries two different (normalized) names or
        when the labels are not contiguous ``0..n-1``.
        """
        names: Dict[int, str] = {}
        for split in SPLITS:
            for _, label, classname in splits[split]:
                classname = cls.normalize_classname(str(classname))
                old = names.setdefault(label, classname)
                if old != classname:
                    raise ValueError(
                        f'split file {path}: label {label} has two different '
                        f'class names {old!r} and {classname!r}')
        if not names:
            raise ValueError(f'split file {path} has no entries')
        n = max(names) + 1
        missing = sorted(set(range(n)) - set(names))
        if min(names) < 0 or missing:
            raise ValueError(
                f'split file {path}: labels must be contiguous 0..{n - 1}; '
                f'found labels {min(names)}..{max(names)}, missing '
                f'{missing[:10]}{"..." if len(missing) > 10 else ""}')
        return tuple(names[i] for i in range(n))

    def load_data_list(self) -> List[dict]:
        """``[dict(img_path=<absolute path>, gt_label=int), ...]`` in split
        file order; errors when any listed image file is missing."""
        entries = self._entries
        if entries is None:  # reloaded after a full_init: read again
            entries = self._read_split_file(self.ann_file)[self.split]
        image_root = self.img_prefix
        data_list = [
            dict(img_path=osp.join(image_root, rel_path), gt_label=label)
            for rel_path, label, _ in entries
        ]
        missing = [d['img_path'] for d in data_list
                   if not osp.exists(d['img_path'])]
        if missing:
            raise FileNotFoundError(
                f'{type(self).__name__}: {len(missing)} of {len(data_list)} '
                f'images of the {self.split!r} split listed in '
                f'{self.ann_file} are missing (first: {missing[0]}); '
                f'check that the images under {image_root} are complete '
                f'({self.SOURCE})')
        self._entries = None  # the serialized data list replaces it
        return data_list

    def extra_repr(self) -> List[str]:
        return [f'Split: \t{self.split}', *super().extra_repr()]


@DATASETS.register_module()
class CoOpEuroSAT(CoOpSplitDataset):
    """EuroSAT (10 classes) in the CoOp layout.

    Layout: ``<data_root>/2750/<Folder>/<Folder>_<n>.jpg`` and
    ``<data_root>/split_zhou_EuroSAT.json``. The official split already has
    readable names ("Annual Crop Land", ..., labels 0..9 in sorted-folder
    order); a split file with raw folder names (``AnnualCrop``) is mapped to
    them (CoOp's ``NEW_CLASSNAMES``).
    """
    SLUG = 'eurosat'
    SPLIT_FILE = 'split_zhou_EuroSAT.json'
    IMAGE_DIR = '2750'
    CLASSNAME_MAP = EUROSAT_CLASSNAMES
    IMAGE_LAYOUT = '<class>/*.jpg'
    SOURCE = ('images: http://madm.dfki.de/files/sentinel/EuroSAT.zip, '
              f'split: CoOp DATASETS.md {COOP_DATASETS_MD}#eurosat')
