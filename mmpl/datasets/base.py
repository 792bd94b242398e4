"""The one base of mmpl's dataset readers.

Every reader (split-file, FGVCAircraft lists, ImageNet folders, the user's
own data) is a :class:`CoOpDatasetBase` subclass that implements two hooks:
``_read_annotations(data_root)`` (checks the layout, returns the class names
and the image root; runs in ``__init__`` so ``metainfo`` is there even with
``lazy_init=True``) and ``_entries()`` (the ``(rel_path, label)`` list of the
split; runs when the data list is loaded). A benchmark dataset is a further
subclass that only sets its reading attributes (slug, files, class-name
rules); what else mmpl knows about it (folder, size, source, downloads) is
its :class:`~mmpl.datasets.catalogue.DatasetCard`, set as ``CARD`` by
:func:`register_reader`. :data:`READERS` maps each slug to its reader, for
the data tool and the miniatures.

Every problem with the data is an error with a one-line, actionable message;
nothing is skipped silently.
"""
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type

from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from ..utils.errors import ConfigError, DataError, MissingFileError
from .catalogue import CARDS, CUSTOM, DatasetCard
from .samplers import call_seeded
from .templates import DATASET_TEMPLATES, DEFAULT_TEMPLATE

SPLITS: Tuple[str, ...] = ('train', 'val', 'test')


#: slug -> reader class (benchmark datasets only)
READERS: Dict[str, Type['CoOpDatasetBase']] = {}


def register_reader(cls):
    """Register ``cls`` in mmpretrain's ``DATASETS`` and in :data:`READERS`
    (under ``cls.SLUG``), with its catalogue card as ``cls.CARD``."""
    cls.CARD = CARDS[cls.SLUG]
    DATASETS.register_module(module=cls)
    READERS[cls.SLUG] = cls
    return cls


def declare_reader(base: type, name: str, slug: str, module: str,
                   **attrs: Any) -> type:
    """Declare and register the reader ``name`` of catalogue dataset
    ``slug``: a subclass of ``base`` with ``SLUG`` and the reading
    attributes ``attrs``, documented by its card (:meth:`DatasetCard.
    describe`), defined in ``module`` (so that it pickles by name)."""
    doc = CARDS[slug].describe()
    cls = type(name, (base, ), dict(attrs, SLUG=slug, __doc__=doc,
                                    __module__=module, __qualname__=name))
    return register_reader(cls)


class CoOpDatasetBase(BaseDataset):
    """Common behaviour of mmpl's readers (see the module docstring).

    Args:
        data_root: the dataset's own folder, e.g. ``data/eurosat``. Made
            absolute, so ``img_path`` of every sample is absolute.
        split: ``'train'``, ``'val'`` or ``'test'`` (default: the class's
            ``DEFAULT_SPLIT``); test-only datasets accept only ``'test'``.
        template: prompt template stored in ``metainfo['template']``
            (default: the class's ``TEMPLATE``, else the protocol template of
            the slug, else ``'a photo of a {}.'``).
        slug: dataset slug stored in ``metainfo['dataset']`` (default: the
            class's ``SLUG``).
        pipeline: mmpretrain transforms.
        **kwargs: passed to :class:`mmpretrain.datasets.BaseDataset`
            (``test_mode``, ``lazy_init``, ``serialize_data``, ``metainfo``
            -- e.g. ``metainfo=dict(classes=[...])`` renames the classes --,
            ``indices`` ...).

    ``load_data_list()`` returns ``[dict(img_path=<absolute path>,
    gt_label=int), ...]``; ``metainfo`` holds ``classes`` (tuple, index =
    label), ``template`` (str) and ``dataset`` (slug).
    """

    #: dataset slug (key of ``DATASET_TEMPLATES``), ``metainfo['dataset']``
    SLUG: str = 'custom'
    #: prompt template; ``None`` -> ``DATASET_TEMPLATES[SLUG]``
    TEMPLATE: Optional[str] = None
    #: the dataset's catalogue card (set by :func:`register_reader`)
    CARD: DatasetCard = CUSTOM
    #: splits the dataset has, and the default one
    AVAILABLE_SPLITS: Tuple[str, ...] = SPLITS
    DEFAULT_SPLIT: str = 'train'
    #: check that every listed image exists when the data list is loaded
    CHECK_FILES: bool = True

    def __init__(self,
                 data_root: str,
                 split: Optional[str] = None,
                 template: Optional[str] = None,
                 slug: Optional[str] = None,
                 pipeline: Sequence = (),
                 **kwargs: Any) -> None:
        name = type(self).__name__
        split = self.DEFAULT_SPLIT if split is None else split
        if split not in SPLITS:
            raise ConfigError(f'{name}: unknown split {split!r}; expected one '
                              f'of {list(self.AVAILABLE_SPLITS)}')
        if split not in self.AVAILABLE_SPLITS:
            raise ConfigError(
                f'{name} is test-only (a domain-generalisation target): '
                f'split must be one of {list(self.AVAILABLE_SPLITS)}, got '
                f'{split!r}')
        self.split = split
        self.slug = slug if slug is not None else self.SLUG
        data_root = osp.abspath(osp.expanduser(str(data_root)))
        if not osp.isdir(data_root):
            raise MissingFileError(
                f'{name}: data root {data_root} does not exist; '
                f'{self.layout_hint(data_root)} ({self.CARD.source})')
        classes, image_dir, ann_file = self._read_annotations(data_root)
        if template is None:
            template = self.TEMPLATE or DATASET_TEMPLATES.get(
                self.slug, DEFAULT_TEMPLATE)
        user_meta = dict(kwargs.pop('metainfo', None) or {})
        super().__init__(
            ann_file=ann_file,
            metainfo={'classes': tuple(classes), **user_meta},
            data_root=data_root,
            data_prefix=dict(img_path=image_dir),
            pipeline=pipeline,
            **kwargs)
        # set after __init__: mmengine would try to read str metainfo values
        # as meta files (and warn)
        self._metainfo.setdefault('template', template)
        self._metainfo.setdefault('dataset', self.slug)

    # ------------------------------------------------------------- hooks
    def layout_hint(self, root: str) -> str:
        """``'expected <what goes where under root>'`` for error messages."""
        raise NotImplementedError

    def _read_annotations(self, root: str) -> Tuple[Sequence[str], str, str]:
        """Check the layout; return ``(classes, image_dir, ann_file)``, the
        latter two relative to ``root``."""
        raise NotImplementedError

    def _entries(self) -> List[Tuple[str, int]]:
        """``(path relative to the image root, label)`` of the split."""
        raise NotImplementedError

    # ---------------------------------------------------------- protocol
    def load_data_list(self) -> List[dict]:
        """``[dict(img_path=<absolute path>, gt_label=int), ...]``; errors
        when any listed image file is missing."""
        image_root = self.img_prefix
        data_list = [
            dict(img_path=osp.join(image_root, rel), gt_label=int(label))
            for rel, label in self._entries()
        ]
        if not data_list:
            raise DataError(
                f'{type(self).__name__}: the {self.split!r} split of '
                f'{self.ann_file or image_root} is empty')
        if self.CHECK_FILES:
            missing = [d['img_path'] for d in data_list
                       if not osp.exists(d['img_path'])]
            if missing:
                raise MissingFileError(
                    f'{type(self).__name__}: {len(missing)} of '
                    f'{len(data_list)} images of the {self.split!r} split '
                    f'listed in {self.ann_file} are missing (first: '
                    f'{missing[0]}); check that the images under '
                    f'{image_root} are complete ({self.CARD.source})')
        return data_list

    def __getitem__(self, idx: int) -> Any:
        """mmengine's ``__getitem__``, with the augmentation seeded by a
        :class:`~mmpl.datasets.samplers.SeededIndex` (exact resume with
        dataloader workers)."""
        return call_seeded(super().__getitem__, idx)

    def extra_repr(self) -> List[str]:
        return [f'Split: \t{self.split}', *super().extra_repr()]
