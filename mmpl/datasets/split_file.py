"""The reader of the CoOp split-file format, and the benchmark datasets
that use it (FGVCAircraft's text lists: :mod:`.fgvc_aircraft`; the user's
own data: :mod:`.custom`).

From the CoOp benchmark protocol: a dataset lives in its own folder
(``data_root``, e.g. ``data/eurosat``) with an image root (``2750`` for
EuroSAT) and a split file ``split_zhou_<Name>.json`` holding
``{"train": [[rel_path, label, classname], ...], "val": [...], "test": [...]}``
where ``rel_path`` is relative to the image root, labels are 0-based and
contiguous and class names are the readable names.

Project's reading: there is ONE reader (:class:`CoOpSplitDataset`); a dataset
is a subclass that only sets its four reading attributes (``SPLIT_FILE``,
``IMAGE_DIR``, ``CLASSNAME_MAP``, ``DROP_CLASSES``) and ``SLUG``, which
names its catalogue card (:mod:`.catalogue`); the benchmark's are declared
from their cards at the end of this module (:func:`_split_reader`). Class
names are taken from the entries of *all* splits of the file (so that
train/val/test agree on ``metainfo['classes']``), after
:meth:`CoOpSplitDataset.normalize_classname`.
"""
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

from mmengine.logging import print_log
from mmpretrain.registry import DATASETS

from ..utils.errors import ConfigError, DataError, MissingFileError
from .base import SPLITS, CoOpDatasetBase, declare_reader
from .catalogue import CARDS
from .folders import GENERATED_KEY

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

#: Caltech101 folder name -> readable name (CoOp's ``NEW_CNAMES``).
CALTECH101_CLASSNAMES: Dict[str, str] = {
    'airplanes': 'airplane',
    'Faces': 'face',
    'Leopards': 'leopard',
    'Motorbikes': 'motorbike',
}


@DATASETS.register_module()
class CoOpSplitDataset(CoOpDatasetBase):
    """A dataset read from a CoOp split file (``split_zhou_*.json``).

    Use it directly with ``split_file``/``image_dir`` (and optionally
    ``slug`` to pick a protocol template), or through a subclass such as
    :class:`CoOpEuroSAT` that fixes them.

    Args:
        data_root: the dataset's own folder.
        split: ``'train'``, ``'val'`` or ``'test'``.
        split_file: split file, relative to ``data_root`` (default: the
            class's ``SPLIT_FILE``).
        image_dir: image root, relative to ``data_root``; the split file's
            ``rel_path`` is relative to it (default: the class's
            ``IMAGE_DIR``).
        **kwargs: see :class:`~mmpl.datasets.base.CoOpDatasetBase`
            (``template``, ``slug``, ``pipeline``, ``lazy_init`` ...).

    Entries of classes in ``DROP_CLASSES`` (raw names) are removed and the
    remaining labels compacted in order (CoOp drops Caltech101's
    ``BACKGROUND_Google`` and ``Faces_easy``). A split file written by
    ``prepare_data.py --make-split`` is used with a loud warning.
    """

    #: split file, relative to ``data_root``
    SPLIT_FILE: Optional[str] = None
    #: image root, relative to ``data_root``
    IMAGE_DIR: Optional[str] = None
    #: raw class name -> readable name (applied by ``normalize_classname``)
    CLASSNAME_MAP: Dict[str, str] = {}
    #: raw class names whose entries are dropped
    DROP_CLASSES: Tuple[str, ...] = ()

    def __init__(self,
                 data_root: str,
                 split: Optional[str] = None,
                 split_file: Optional[str] = None,
                 image_dir: Optional[str] = None,
                 **kwargs: Any) -> None:
        self._split_file = (split_file
                            if split_file is not None else self.SPLIT_FILE)
        self._image_dir = image_dir if image_dir is not None else \
            self.IMAGE_DIR
        if self._split_file is None or self._image_dir is None:
            raise ConfigError(f'{type(self).__name__}: `split_file` and '
                              '`image_dir` are required (relative to '
                              'data_root)')
        self._split_entries: Optional[List[list]] = None
        super().__init__(data_root, split, **kwargs)

    # ------------------------------------------------------------------
    @classmethod
    def normalize_classname(cls, name: str) -> str:
        """Map a class name of the split file to the readable name.

        Default: ``CLASSNAME_MAP.get(name, name)`` (idempotent: readable names
        pass through unchanged).
        """
        return cls.CLASSNAME_MAP.get(name, name)

    def layout_hint(self, root: str) -> str:
        return (f'expected {osp.join(root, self._image_dir, self.CARD.layout)}'
                f' and {osp.join(root, self._split_file)}')

    def _missing_split_file(self, path: str) -> MissingFileError:
        return MissingFileError(
            f'{type(self).__name__}: split file {path} not found; the '
            'official split_zhou_*.json files are published with CoOp\'s '
            f'DATASETS.md instructions ({self.CARD.split_source}); put the '
            'file at that path')

    def _read_annotations(self, root: str):
        split_path = osp.join(root, self._split_file)
        if not osp.isfile(split_path):
            raise self._missing_split_file(split_path)
        image_root = osp.join(root, self._image_dir)
        if not osp.isdir(image_root):
            raise MissingFileError(
                f'{type(self).__name__}: image root {image_root} does not '
                f'exist; {self.layout_hint(root)} ({self.CARD.source})')
        classes, splits = self._load_splits(root)
        self._split_entries = splits[self.split]
        return classes, self._image_dir, self._split_file

    def _load_splits(self, root: str
                     ) -> Tuple[Tuple[str, ...], Dict[str, List[list]]]:
        """``(classes, {split: [[rel_path, label, classname], ...]})``."""
        path = osp.join(root, self._split_file)
        splits = self._read_split_file(path)
        splits = self._drop_classes(splits, path)
        return self._classes_from_splits(splits, path), splits

    def _entries(self) -> List[Tuple[str, int]]:
        entries = self._split_entries
        if entries is None:  # read in __init__; a copy without it reads again
            entries = self._load_splits(self.data_root)[1][self.split]
        return [(rel, label) for rel, label, _ in entries]

    @staticmethod
    def _read_split_file(path: str) -> Dict[str, List[list]]:
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(f'split file {path} is not valid JSON: '
                            f'{e}') from None
        if not isinstance(data, dict) or not any(s in data for s in SPLITS):
            raise DataError(f'split file {path} must be a JSON object with '
                            f'keys {list(SPLITS)}')
        if GENERATED_KEY in data:
            print_log(
                f'WARNING: {path} is NOT an official split ({GENERATED_KEY}: '
                f'{data[GENERATED_KEY]}); results are NOT comparable with '
                'published numbers', logger='current', level=30)
        splits = {}
        for split in SPLITS:
            entries = data.get(split, [])
            for entry in entries:
                if not (isinstance(entry, (list, tuple)) and len(entry) == 3
                        and isinstance(entry[0], str)
                        and isinstance(entry[1], int)
                        and not isinstance(entry[1], bool)):
                    raise DataError(
                        f'split file {path}: bad entry {entry!r} in '
                        f'{split!r}; expected [rel_path, int label, '
                        f'classname]')
            splits[split] = entries
        return splits

    def _drop_classes(self, splits: Dict[str, List[list]],
                      path: str) -> Dict[str, List[list]]:
        """Remove ``DROP_CLASSES`` entries; compact the remaining labels."""
        drop = set(self.DROP_CLASSES)
        if not drop or not any(e[2] in drop for s in splits.values()
                               for e in s):
            return splits
        kept = sorted({e[1] for s in splits.values() for e in s
                       if e[2] not in drop})
        new_label = {old: new for new, old in enumerate(kept)}
        print_log(
            f'{type(self).__name__}: dropped the entries of '
            f'{sorted(drop)} from {path} (CoOp protocol) and relabelled the '
            f'remaining {len(kept)} classes in order', logger='current')
        return {
            split: [[rel, new_label[label], name]
                    for rel, label, name in entries if name not in drop]
            for split, entries in splits.items()
        }

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
                    raise DataError(
                        f'split file {path}: label {label} has two different '
                        f'class names {old!r} and {classname!r}')
        if not names:
            raise DataError(f'split file {path} has no entries')
        n = max(names) + 1
        missing = sorted(set(range(n)) - set(names))
        if min(names) < 0 or missing:
            raise DataError(
                f'split file {path}: labels must be contiguous 0..{n - 1}; '
                f'found labels {min(names)}..{max(names)}, missing '
                f'{missing[:10]}{"..." if len(missing) > 10 else ""}')
        return tuple(names[i] for i in range(n))


def _split_reader(name: str, slug: str, **attrs: Any) -> type:
    """The reader of catalogue dataset ``slug``: its card's split file and
    image root (``attrs``: ``CLASSNAME_MAP``, ``DROP_CLASSES``)."""
    card = CARDS[slug]
    return declare_reader(CoOpSplitDataset, name, slug, __name__,
                          SPLIT_FILE=card.split_file,
                          IMAGE_DIR=card.image_dir, **attrs)


#: the benchmark's split-file datasets (Caltech101: CoOp drops
#: ``BACKGROUND_Google`` and ``Faces_easy`` and renames four classes;
#: EuroSAT: a split file with raw folder names gets CoOp's readable names)
CoOpCaltech101 = _split_reader(
    'CoOpCaltech101', 'caltech101', CLASSNAME_MAP=CALTECH101_CLASSNAMES,
    DROP_CLASSES=('BACKGROUND_Google', 'Faces_easy'))
CoOpOxfordPets = _split_reader('CoOpOxfordPets', 'oxford_pets')
CoOpStanfordCars = _split_reader('CoOpStanfordCars', 'stanford_cars')
CoOpFlowers102 = _split_reader('CoOpFlowers102', 'flowers102')
CoOpFood101 = _split_reader('CoOpFood101', 'food101')
CoOpSUN397 = _split_reader('CoOpSUN397', 'sun397')
CoOpDTD = _split_reader('CoOpDTD', 'dtd')
CoOpEuroSAT = _split_reader('CoOpEuroSAT', 'eurosat',
                            CLASSNAME_MAP=EUROSAT_CLASSNAMES)
CoOpUCF101 = _split_reader('CoOpUCF101', 'ucf101')
