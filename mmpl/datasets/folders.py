"""Folder helpers shared by the readers and the data tool: listing class
folders and images, and CoOp's seeded train/val/test split of a
folder-per-class image root.

Listing is deterministic: hidden entries are skipped and names are sorted
(CoOp lists images in ``os.listdir`` order, which differs between file
systems; sorting is the project's choice so that the same files give the
same split and the same few-shot samples on every machine).
"""
import os
import os.path as osp
import random
from typing import Dict, List, Optional, Sequence

from ..utils.errors import DataError

#: file suffixes (lower case) counted as images
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.ppm', '.pgm', '.tif',
                  '.tiff', '.webp')

#: CoOp's read_and_split_data proportions (train, val); test = the rest
COOP_SPLIT_RATIOS = (0.5, 0.2)

#: key written into generated split files; readers warn when they see it
GENERATED_KEY = 'generated_by'


def list_subdirs(folder: str) -> List[str]:
    """Sorted names of the non-hidden sub-folders of ``folder``."""
    return sorted(e.name for e in os.scandir(folder)
                  if e.is_dir() and not e.name.startswith('.'))


def list_images(folder: str) -> List[str]:
    """Sorted names of the non-hidden image files directly in ``folder``."""
    return sorted(e.name for e in os.scandir(folder)
                  if e.is_file() and not e.name.startswith('.')
                  and osp.splitext(e.name)[1].lower() in IMG_EXTENSIONS)


def generate_split(image_root: str,
                   seed: int = 1,
                   ratios: Sequence[float] = COOP_SPLIT_RATIOS,
                   ignored: Sequence[str] = (),
                   classname_map: Optional[Dict[str, str]] = None
                   ) -> Dict[str, List[list]]:
    """CoOp's ``read_and_split_data`` on a folder-per-class image root.

    Class folders are sorted (``ignored`` ones dropped) and labelled in that
    order; per class, in label order, the sorted image list is shuffled with
    one ``random.Random(seed)`` and cut into ``round(n * ratios[0])`` train,
    ``round(n * ratios[1])`` val and the rest test images. Returns
    ``{"train"|"val"|"test": [[rel_path, label, classname], ...]}`` with
    ``rel_path = <class folder>/<file>`` and ``classname =
    classname_map.get(folder, folder)``.

    Errors (one line) when a class has too few images for three non-empty
    parts or when there is no class folder.
    """
    p_train, p_val = ratios
    classname_map = classname_map or {}
    folders = [f for f in list_subdirs(image_root) if f not in ignored]
    if not folders:
        raise DataError(f'no class folders under {image_root}; expected '
                        f'{osp.join(image_root, "<class>", "<image>")}')
    rng = random.Random(seed)
    splits: Dict[str, List[list]] = {'train': [], 'val': [], 'test': []}
    for label, folder in enumerate(folders):
        images = list_images(osp.join(image_root, folder))
        rng.shuffle(images)
        n = len(images)
        n_train, n_val = round(n * p_train), round(n * p_val)
        if min(n_train, n_val, n - n_train - n_val) <= 0:
            raise DataError(
                f'class folder {osp.join(image_root, folder)} has {n} images: '
                f'too few for a {p_train:.0%}/{p_val:.0%}/'
                f'{1 - p_train - p_val:.0%} train/val/test split (each part '
                'needs at least one image)')
        name = classname_map.get(folder, folder)
        rel = [f'{folder}/{im}' for im in images]
        splits['train'] += [[r, label, name] for r in rel[:n_train]]
        splits['val'] += [[r, label, name]
                          for r in rel[n_train:n_train + n_val]]
        splits['test'] += [[r, label, name] for r in rel[n_train + n_val:]]
    return splits
