"""The catalogue of the benchmark datasets: one :class:`DatasetCard` each.

A card says where a dataset lives under a data root, how big it is, where
it is published and what the data tool may do with it (download, generate
a split). Readers only read; they keep their card as ``CARD`` for their
error messages, and ``tools/dataset_converters/prepare_data.py`` reads the
cards (``READERS[slug].CARD``). Nothing here imports a reader.
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, NamedTuple, Optional, Tuple

COOP_DATASETS_MD = ('https://github.com/KaiyangZhou/CoOp/blob/main/'
                    'DATASETS.md')


class Download(NamedTuple):
    """A public archive of a dataset, and where its content goes.

    ``members`` maps an archive path prefix to a path (prefix) relative to
    the dataset folder; members outside every prefix are not extracted.
    """
    url: str
    members: Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class DatasetCard:
    """What mmpl knows about a dataset besides how to read it.

    Attributes:
        slug: the dataset's name in mmpl (``metainfo['dataset']``, the key
            of the prompt templates and of :data:`READERS`).
        dir: its folder under a data root (PROTOCOL.md ``dir``).
        num_classes: classes of the full dataset (checked by the data tool).
        source: where the data comes from (for error messages).
        split_source: where the official split file is published.
        layout: how images are laid out under the image root (for error
            messages).
        downloads: public archives the data tool can download.
        can_generate_split: ``prepare_data.py --make-split`` may generate a
            split (CoOp generated this dataset's official split with
            ``read_and_split_data``).
        num_images: images of each full split (checked by the data tool).
        title: the dataset's name in prose (the reader's docstring).
        split_file: the split file under the folder (split-file readers).
        image_dir: the image root under the folder (split-file readers:
            the root of the split file's paths; test-only image-folder
            readers: the folder of the class folders).
    """
    slug: str
    dir: Optional[str] = None
    num_classes: Optional[int] = None
    source: str = f'see CoOp DATASETS.md ({COOP_DATASETS_MD})'
    split_source: str = COOP_DATASETS_MD
    layout: str = '<rel_path from the split file>'
    downloads: Tuple[Download, ...] = ()
    can_generate_split: bool = False
    num_images: Dict[str, int] = field(default_factory=dict)
    title: str = ''
    split_file: Optional[str] = None
    image_dir: Optional[str] = None

    def describe(self) -> str:
        """One paragraph for the reader's docstring: what it reads where."""
        if self.split_file:
            where = (f'``{osp.join(self.image_dir, self.layout)}`` and '
                     f'``{self.split_file}``')
        else:  # class folders and the wnid -> name list
            where = (f'``{self.image_dir}/<class folder>/<image>`` and '
                     '``classnames.txt``')
        return (f'{self.title} ({self.num_classes} classes): {where} under '
                f'the dataset folder ``{self.dir}``. Source: {self.source}.')


#: the card of a reader outside the catalogue (the user's own data)
CUSTOM = DatasetCard('custom')


def _coop(anchor: str) -> str:
    return f'{COOP_DATASETS_MD}#{anchor}'


def _source(images: str, anchor: str) -> str:
    return f'images: {images}, split: CoOp DATASETS.md {_coop(anchor)}'


def _coop_ref(anchor: str) -> str:
    return f'CoOp DATASETS.md {_coop(anchor)}'


def _split_zhou(title: str, name: str, image_dir: str) -> dict:
    """The reading fields of a dataset with a CoOp split file
    ``split_zhou_<name>.json`` over the image root ``image_dir``."""
    return dict(title=title, split_file=f'split_zhou_{name}.json',
                image_dir=image_dir)


def _coop_split(slug: str, folder: str, num_classes: int, images: str,
                anchor: str, **kwargs) -> DatasetCard:
    """The card of a dataset whose split file CoOp publishes (DATASETS.md,
    section ``anchor``); its images come from ``images``."""
    return DatasetCard(slug, folder, num_classes,
                       source=_source(images, anchor),
                       split_source=_coop(anchor), **kwargs)


def _archive(url: str, *folders: str) -> Tuple[Download, ...]:
    """One archive whose ``folders`` (prefixes ending in ``/``) keep their
    paths under the dataset folder."""
    return (Download(url, tuple((f, f) for f in folders)), )


_VGG = 'https://www.robots.ox.ac.uk/~vgg/data'
_FGVC = f'{_VGG}/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz'
_IMAGENET_V2 = ('https://huggingface.co/datasets/vaishaal/ImageNetV2/'
                'resolve/main/imagenetv2-matched-frequency.tar.gz')
_HENDRYCKS = 'https://people.eecs.berkeley.edu/~hendrycks'
_FOOD101 = 'https://data.vision.ee.ethz.ch/cvl/food-101.tar.gz'
_SUN397 = 'http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz'
_EUROSAT = 'http://madm.dfki.de/files/sentinel/EuroSAT.zip'

def _hendrycks(slug: str, folder: str, title: str,
               num_images: int) -> DatasetCard:
    """ImageNet-A / -R (200 classes): Hendrycks' tar of ``<name>/<wnid>/``
    folders, ``name`` = the title in lower case."""
    name = title.lower()
    tar = f'{_HENDRYCKS}/{name}.tar'
    return DatasetCard(slug, folder, 200, source=f'{tar}, {_coop_ref(name)}',
                       downloads=_archive(tar, f'{name}/'),
                       num_images={'test': num_images}, title=title,
                       image_dir=name)


#: slug -> card, the 11 datasets of the CoOp benchmark and the 4 ImageNet
#: variants of domain generalisation
CARDS: Dict[str, DatasetCard] = {card.slug: card for card in (
    _coop_split(
        'caltech101', 'caltech-101', 100,
        'https://data.caltech.edu/records/mzrjq-6wc02', 'caltech101',
        layout='<class>/image_*.jpg', can_generate_split=True,
        **_split_zhou('Caltech101', 'Caltech101', '101_ObjectCategories')),
    _coop_split(
        'oxford_pets', 'oxford_pets', 37, f'{_VGG}/pets/', 'oxfordpets',
        layout='<Breed>_<n>.jpg',
        downloads=_archive(f'{_VGG}/pets/data/images.tar.gz', 'images/'),
        **_split_zhou('Oxford-IIIT Pets', 'OxfordPets', 'images')),
    _coop_split(
        'stanford_cars', 'stanford_cars', 196,
        'https://ai.stanford.edu/~jkrause/cars/car_dataset.html (mirrors: '
        'see CoOp DATASETS.md)', 'stanfordcars',
        layout='cars_{train,test}/<n>.jpg',
        **_split_zhou('Stanford Cars', 'StanfordCars', '')),
    _coop_split(
        'flowers102', 'oxford_flowers', 102, f'{_VGG}/flowers/102/',
        'flowers102', layout='image_<n>.jpg',
        downloads=_archive(f'{_VGG}/flowers/102/102flowers.tgz', 'jpg/'),
        **_split_zhou('Oxford Flowers102', 'OxfordFlowers', 'jpg')),
    _coop_split(
        'food101', 'food-101', 101, _FOOD101, 'food101',
        layout='<class>/<id>.jpg', can_generate_split=True,
        downloads=(Download(_FOOD101,
                            (('food-101/images/', 'images/'), )), ),
        **_split_zhou('Food-101', 'Food101', 'images')),
    DatasetCard(
        'fgvc_aircraft', 'fgvc_aircraft', 100,
        source=f'{_FGVC}, see {_coop("fgvcaircraft")}',
        split_source=('the data/ folder of fgvc-aircraft-2013b.tar.gz '
                      f'({_VGG}/fgvc-aircraft/)'),
        layout='<id>.jpg',
        downloads=(Download(_FGVC,
                            (('fgvc-aircraft-2013b/data/', ''), )), ),
        title='FGVC-Aircraft'),
    _coop_split(
        'sun397', 'sun397', 397, _SUN397, 'sun397',
        layout='<letter>/<class>/*.jpg',
        downloads=_archive(_SUN397, 'SUN397/'),
        **_split_zhou('SUN397', 'SUN397', 'SUN397')),
    _coop_split(
        'dtd', 'dtd', 47, f'{_VGG}/dtd/', 'dtd',
        layout='<class>/<class>_<n>.jpg', can_generate_split=True,
        downloads=(Download(f'{_VGG}/dtd/download/dtd-r1.0.1.tar.gz',
                            (('dtd/images/', 'images/'), )), ),
        **_split_zhou('Describable Textures (DTD)', 'DescribableTextures',
                      'images')),
    _coop_split(
        'eurosat', 'eurosat', 10, _EUROSAT, 'eurosat',
        layout='<class>/*.jpg', can_generate_split=True,
        downloads=_archive(_EUROSAT, '2750/'),
        **_split_zhou('EuroSAT', 'EuroSAT', '2750')),
    DatasetCard(
        'ucf101', 'ucf101', 101,
        source=('images and split (UCF-101-midframes.zip, '
                f'split_zhou_UCF101.json): {_coop_ref("ucf101")}'),
        split_source=_coop('ucf101'),
        layout='<Class>/v_<Class>_g<n>_c<n>.jpg',
        **_split_zhou('UCF101 middle frames', 'UCF101',
                       'UCF-101-midframes')),
    DatasetCard(
        'imagenet', 'imagenet', 1000,
        source=('https://image-net.org (ILSVRC-2012, login), '
                f'{_coop_ref("imagenet")}'),
        num_images={'train': 1281167, 'val': 50000, 'test': 50000},
        title='ImageNet'),
    DatasetCard(
        'imagenetv2', 'imagenetv2', 1000,
        source=f'{_IMAGENET_V2}, {_coop_ref("imagenetv2")}',
        downloads=_archive(_IMAGENET_V2,
                           'imagenetv2-matched-frequency-format-val/'),
        num_images={'test': 10000},
        title='ImageNetV2 matched-frequency',
        image_dir='imagenetv2-matched-frequency-format-val'),
    DatasetCard(
        'imagenet_sketch', 'imagenet-sketch', 1000,
        source=('https://github.com/HaohanWang/ImageNet-Sketch, '
                f'{_coop_ref("imagenet-sketch")}'),
        num_images={'test': 50889},
        title='ImageNet-Sketch',
        image_dir='images'),
    _hendrycks('imagenet_a', 'imagenet-adversarial', 'ImageNet-A', 7500),
    _hendrycks('imagenet_r', 'imagenet-rendition', 'ImageNet-R', 30000),
)}
