"""FGVC-Aircraft, read from the dataset's own text lists (not a CoOp
split file; CoOp reads the same lists)."""
import os.path as osp

from ..utils.errors import DataError, MissingFileError
from .base import SPLITS, register_reader
from .split_file import CoOpSplitDataset


@register_reader
class CoOpFGVCAircraft(CoOpSplitDataset):
    """FGVC-Aircraft (100 variants), read from the dataset's own lists.

    Layout (the ``data`` folder of ``fgvc-aircraft-2013b``, renamed):
    ``images/<id>.jpg``, ``variants.txt`` (one variant per line; label =
    line index) and ``images_variant_{train,val,test}.txt`` (``<id>
    <variant>`` per line; variant names may contain spaces and ``/``).
    """
    SLUG = 'fgvc_aircraft'
    SPLIT_FILE = 'variants.txt'
    LIST_FILE = 'images_variant_{}.txt'
    IMAGE_DIR = 'images'

    def layout_hint(self, root: str) -> str:
        return (f'expected {osp.join(root, "images", "<id>.jpg")}, '
                f'{osp.join(root, "variants.txt")} and '
                f'{osp.join(root, "images_variant_{train,val,test}.txt")}')

    def _missing_split_file(self, path: str) -> MissingFileError:
        return MissingFileError(
            f'{type(self).__name__}: {path} not found; it is in '
            f'{self.CARD.split_source}; {self.layout_hint(osp.dirname(path))}')

    def _read_annotations(self, root: str):
        classes = super()._read_annotations(root)[0]
        return classes, self._image_dir, self.LIST_FILE.format(self.split)

    def _load_splits(self, root: str):
        with open(osp.join(root, self._split_file), encoding='utf-8') as f:
            classes = tuple(line.strip() for line in f if line.strip())
        label_of = {name: i for i, name in enumerate(classes)}
        splits = {}
        for split in SPLITS:
            path = osp.join(root, self.LIST_FILE.format(split))
            if not osp.isfile(path):
                raise self._missing_split_file(path)
            entries = []
            with open(path, encoding='utf-8') as f:
                for n, line in enumerate(f, 1):
                    parts = line.strip().split(' ')
                    if not parts[0]:
                        continue
                    variant = ' '.join(parts[1:])
                    if variant not in label_of:
                        raise DataError(
                            f'{path} line {n}: variant {variant!r} is not in '
                            f'{osp.join(root, self._split_file)}')
                    entries.append([f'{parts[0]}.jpg', label_of[variant],
                                    variant])
            splits[split] = entries
        return classes, splits
