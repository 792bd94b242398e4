"""ImageNet and its domain-generalisation variants, in the CoOp layout.

From the CoOp benchmark protocol (CoOp's ``ImageNet*`` readers):

- ImageNet: ``imagenet/images/{train,val}/<wnid>/*`` and
  ``imagenet/classnames.txt`` (``<wnid> <name>`` per line, 1000 lines in
  sorted-wnid order); label = index of the wnid in ``classnames.txt``.
  CoOp trains on ``train`` and uses the official ``val`` set as its test set
  (and as its validation set): here ``split='val'`` and ``split='test'``
  both read ``images/val``.
- ImageNetV2: ``imagenetv2/imagenetv2-matched-frequency-format-val/<i>/*``;
  folder ``i`` has label ``i`` and the name on line ``i`` of
  ``imagenetv2/classnames.txt``.
- ImageNet-Sketch: ``imagenet-sketch/images/<wnid>/*``; labels as ImageNet.
- ImageNet-A / -R: ``imagenet-adversarial/imagenet-a/<wnid>/*`` and
  ``imagenet-rendition/imagenet-r/<wnid>/*``: 200 classes each, labelled in
  sorted-wnid order (CoOp enumerates the sorted folders), named from the
  ``classnames.txt`` next to them. The 200-wnid subsets ship with mmpl
  (``mmpl/datasets/meta/imagenet_{a,r}_wnids.txt``) so that an incomplete
  copy is an error, not a silent relabelling.

Every variant has its own ``classnames.txt`` (CoOp's instructions copy
ImageNet's); ``prepare_data.py --make-classnames`` writes it offline from
the class names shipped in open_clip (see :func:`imagenet_classnames`).
Images are listed sorted (hidden files skipped), so sample order and
few-shot draws are the same on every machine.
"""
import os
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

from ..utils.errors import DataError, MissingFileError
from .base import CoOpDatasetBase, declare_reader, register_reader
from .catalogue import CARDS
from .folders import list_images, list_subdirs

META_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'meta')
CLASSNAMES_FILE = 'classnames.txt'


def _read_lines(name: str) -> List[str]:
    with open(osp.join(META_DIR, name), encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip()]


def imagenet_wnids(subset: str = 'imagenet') -> List[str]:
    """Sorted wnids shipped with mmpl: ``'imagenet'`` (the 1000 ILSVRC-2012
    classes), ``'imagenet_a'`` or ``'imagenet_r'`` (their 200 classes)."""
    return _read_lines(f'{subset}_wnids.txt')


def imagenet_classnames() -> 'OrderedDict[str, str]':
    """wnid -> CLIP class name for the 1000 ImageNet classes, offline.

    Correspondence relied on: open_clip's ``IMAGENET_CLASSNAMES`` (in
    ``open_clip.zero_shot_metadata``, the names of CLIP's ImageNet notebook,
    which CoOp's ``classnames.txt`` also holds) is in the standard ILSVRC-2012
    class-index order, and that order is the sorted order of the wnids
    (as in torchvision/timm/Keras): name ``i`` belongs to the ``i``-th wnid.
    """
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
    wnids = imagenet_wnids()
    if len(wnids) != len(IMAGENET_CLASSNAMES):
        raise RuntimeError('open_clip IMAGENET_CLASSNAMES has '
                           f'{len(IMAGENET_CLASSNAMES)} names, expected '
                           f'{len(wnids)}')
    return OrderedDict(zip(wnids, IMAGENET_CLASSNAMES))


def read_classnames(path: str) -> 'OrderedDict[str, str]':
    """``<wnid> <name>`` per line -> ordered ``{wnid: name}`` (CoOp's
    ``read_classnames``: the name is the rest of the line)."""
    names: 'OrderedDict[str, str]' = OrderedDict()
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            parts = line.strip().split(' ')
            if not parts[0]:
                continue
            if len(parts) < 2:
                raise DataError(f'{path} line {n}: expected "<wnid> <class '
                                f'name>", got {line.strip()!r}')
            if parts[0] in names:
                raise DataError(f'{path} line {n}: wnid {parts[0]} appears '
                                'twice')
            names[parts[0]] = ' '.join(parts[1:])
    if not names:
        raise DataError(f'{path} is empty; expected "<wnid> <class name>" '
                        'per line')
    return names


def write_classnames(path: str,
                     wnids: Optional[List[str]] = None) -> bool:
    """Write ``classnames.txt`` (``<wnid> <name>`` per line) from
    :func:`imagenet_classnames`, for ``wnids`` (default: all 1000, in sorted
    order). Never overwrites: returns ``False`` if ``path`` exists."""
    names = imagenet_classnames()
    wnids = list(names) if wnids is None else list(wnids)
    unknown = [w for w in wnids if w not in names]
    if unknown:
        raise DataError(f'unknown ImageNet wnids {unknown[:5]}')
    if osp.exists(path):
        return False
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'x', encoding='utf-8') as f:
        f.write(''.join(f'{w} {names[w]}\n' for w in wnids))
    return True


class CoOpImageFolderDataset(CoOpDatasetBase):
    """ImageNet-style reader: one folder per class and ``classnames.txt``.

    Args:
        data_root: the dataset folder (e.g. ``data/imagenet``).
        split: see the class's ``SPLIT_DIRS``.
        classnames_file: ``<wnid> <name>`` file, relative to ``data_root``
            or absolute (default ``classnames.txt``).
        **kwargs: see :class:`~mmpl.datasets.base.CoOpDatasetBase`.

    Subclass attributes: ``SPLIT_DIRS`` (split -> image root relative to
    ``data_root``), ``FOLDERS_ARE_INDICES`` (folders named ``0..n-1`` instead
    of wnids), ``WNID_SUBSET`` (a shipped wnid list restricting the classes).
    Every class must have a non-empty folder, and every folder must be a
    class: anything else is an error.
    """
    SPLIT_DIRS: Dict[str, str] = {}
    FOLDERS_ARE_INDICES: bool = False
    WNID_SUBSET: Optional[str] = None
    CHECK_FILES = False  # the images are found by listing the folders

    def __init__(self,
                 data_root: str,
                 split: Optional[str] = None,
                 classnames_file: str = CLASSNAMES_FILE,
                 **kwargs: Any) -> None:
        self.classnames_file = classnames_file
        self._class_folders: List[str] = []
        super().__init__(data_root, split, **kwargs)

    def layout_hint(self, root: str) -> str:
        folder = '<i>' if self.FOLDERS_ARE_INDICES else '<wnid>'
        return (f'expected {osp.join(root, self.SPLIT_DIRS[self.split], folder, "<image>")}'  # noqa: E501
                f' and {osp.join(root, self.classnames_file)}')

    def _class_wnids(self, names: 'OrderedDict[str, str]') -> List[str]:
        if self.WNID_SUBSET is None:
            return list(names)
        return [w for w in imagenet_wnids(self.WNID_SUBSET) if w in names]

    def _read_annotations(self, root: str):
        name = type(self).__name__
        image_dir = self.SPLIT_DIRS[self.split]
        image_root = osp.join(root, image_dir)
        if not osp.isdir(image_root):
            raise MissingFileError(
                f'{name}: image folder {image_root} does not exist; '
                f'{self.layout_hint(root)} ({self.CARD.source})')
        path = osp.join(root, self.classnames_file)
        if not osp.isfile(path):
            raise MissingFileError(
                f'{name}: {path} not found; write it offline with '
                'python tools/dataset_converters/prepare_data.py --data-root '
                f'{osp.dirname(root)} --datasets {self.SLUG} '
                '--make-classnames (or copy imagenet/classnames.txt there)')
        names = read_classnames(path)
        wnids = self._class_wnids(names)
        if not wnids:
            raise DataError(f'{name}: {path} lists none of the '
                            f'{self.CARD.num_classes} classes of {self.SLUG}')
        self._class_folders = ([str(i) for i in range(len(wnids))]
                               if self.FOLDERS_ARE_INDICES else wnids)
        self._check_folders(image_root, path)
        return tuple(names[w] for w in wnids), image_dir, ''

    def _check_folders(self, image_root: str, classnames_path: str) -> None:
        present = set(list_subdirs(image_root))
        missing = [f for f in self._class_folders if f not in present]
        extra = sorted(present - set(self._class_folders))
        name = type(self).__name__
        if missing:
            raise MissingFileError(
                f'{name}: {len(missing)} of {len(self._class_folders)} class '
                f'folders are missing under {image_root} (first: '
                f'{osp.join(image_root, missing[0])}); the classes are the '
                f'lines of {classnames_path} ({self.CARD.source})')
        if extra:
            raise DataError(
                f'{name}: {len(extra)} folders under {image_root} are not '
                f'classes of {classnames_path} (first: {extra[0]}); fix '
                'classnames.txt (prepare_data.py --make-classnames writes '
                'the official one) or move the folders away')

    def _entries(self) -> List[Tuple[str, int]]:
        entries = []
        for label, folder in enumerate(self._class_folders):
            images = list_images(osp.join(self.img_prefix, folder))
            if not images:
                raise MissingFileError(
                    f'{type(self).__name__}: class folder '
                    f'{osp.join(self.img_prefix, folder)} has no images '
                    f'({self.CARD.source})')
            entries += [(f'{folder}/{im}', label) for im in images]
        return entries


@register_reader
class CoOpImageNet(CoOpImageFolderDataset):
    """ImageNet (1000 classes); ``split='val'`` = ``split='test'`` = the
    official val set (CoOp's convention, see the module docstring)."""
    SLUG = 'imagenet'
    SPLIT_DIRS = {'train': 'images/train', 'val': 'images/val',
                  'test': 'images/val'}


def _test_set(name: str, slug: str, **attrs: Any) -> type:
    """The reader of a test-only ImageNet variant: the class folders under
    its card's ``image_dir`` (``attrs``: ``FOLDERS_ARE_INDICES``,
    ``WNID_SUBSET``)."""
    return declare_reader(CoOpImageFolderDataset, name, slug, __name__,
                          AVAILABLE_SPLITS=('test', ), DEFAULT_SPLIT='test',
                          SPLIT_DIRS={'test': CARDS[slug].image_dir},
                          **attrs)


#: the domain-generalisation targets (ImageNetV2's folders are class
#: indices; ImageNet-A/-R hold 200 of the 1000 classes)
CoOpImageNetV2 = _test_set('CoOpImageNetV2', 'imagenetv2',
                           FOLDERS_ARE_INDICES=True)
CoOpImageNetSketch = _test_set('CoOpImageNetSketch', 'imagenet_sketch')
CoOpImageNetA = _test_set('CoOpImageNetA', 'imagenet_a',
                          WNID_SUBSET='imagenet_a')
CoOpImageNetR = _test_set('CoOpImageNetR', 'imagenet_r',
                          WNID_SUBSET='imagenet_r')
