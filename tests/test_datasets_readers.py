"""Every reader on a miniature of its real layout: classes, names, splits,
few-shot, base/new, the ImageNet family's conventions, the user's own data,
and one clear error per kind of bad input. Offline, in tmp_path."""
import json
import logging
import os
import os.path as osp
import shutil
from collections import Counter

import pytest
from mmengine.logging import MMLogger
from mmpretrain.registry import DATASETS, TRANSFORMS
from mmpretrain.utils import register_all_modules

from mmpl.datasets import (READERS, BaseNewDataset, CoOpCaltech101,
                           CoOpCustomDataset, CoOpFGVCAircraft, CoOpImageNet,
                           CoOpImageNetA, CoOpImageNetR, CoOpImageNetSketch,
                           CoOpImageNetV2, FewShotDataset, fewshot_indices,
                           generate_split, imagenet_classnames, imagenet_wnids,
                           read_classnames, write_classnames)
from mmpl.datasets.templates import DATASET_TEMPLATES
from mmpl.testing import MINIATURE_WRITERS, write_miniature
from mmpl.testing.miniature import (CUSTOM_CLASSES, FGVC_VARIANTS,
                                    miniature_wnids)
from helpers import copy_dataset, one_line

register_all_modules(init_default_scope=True)

READER_NAMES = sorted(cls.__name__ for cls in READERS.values())


@pytest.fixture(scope='module')
def mini(tmp_path_factory):
    """All miniatures under one shared read-only root."""
    root = str(tmp_path_factory.mktemp('mini'))
    return {kind: write_miniature(kind, root) for kind in MINIATURE_WRITERS}


# ----------------------------------------------------------- catalogue
def test_all_fifteen_readers_registered():
    assert READER_NAMES == sorted([
        'CoOpImageNet', 'CoOpCaltech101', 'CoOpOxfordPets',
        'CoOpStanfordCars', 'CoOpFlowers102', 'CoOpFood101',
        'CoOpFGVCAircraft', 'CoOpSUN397', 'CoOpDTD', 'CoOpEuroSAT',
        'CoOpUCF101', 'CoOpImageNetV2', 'CoOpImageNetSketch', 'CoOpImageNetA',
        'CoOpImageNetR'])
    for name in READER_NAMES + ['CoOpCustomDataset', 'CoOpFolderDataset',
                                'CoOpSplitDataset']:
        assert DATASETS.get(name) is not None
    assert set(READERS) == set(DATASET_TEMPLATES)
    assert set(MINIATURE_WRITERS) >= set(READER_NAMES) | {
        'CoOpCustomDataset', 'CoOpFolderDataset', 'CustomDataset'}
    assert {cls.CARD.slug for cls in READERS.values()} == set(READERS)
    dirs = {cls.SLUG: cls.CARD.dir for cls in READERS.values()}
    assert dirs['caltech101'] == 'caltech-101'
    assert dirs['imagenet_a'] == 'imagenet-adversarial'
    assert dirs['flowers102'] == 'oxford_flowers'


# ----------------------------------------------------- every reader
@pytest.mark.parametrize('name', READER_NAMES)
def test_reader_on_miniature(name, mini):
    cls = DATASETS.get(name)
    root = mini[name]
    per_split = {'train': 4, 'val': 3 if cls is CoOpImageNet else 2,
                 'test': 3}
    classes = None
    for split in cls.AVAILABLE_SPLITS:
        ds = cls(data_root=root, split=split)
        meta = ds.metainfo
        n = len(meta['classes'])
        assert n == 4 or (name == 'CoOpEuroSAT' and n == 10)
        assert classes in (None, meta['classes'])  # splits agree
        classes = meta['classes']
        assert meta['dataset'] == cls.SLUG
        assert meta['template'] == DATASET_TEMPLATES[cls.SLUG]
        assert len(ds) == n * per_split[split]
        labels = ds.get_gt_labels().tolist()
        assert Counter(labels) == {c: per_split[split] for c in range(n)}
        for i in range(len(ds)):
            assert osp.isfile(ds.get_data_info(i)['img_path'])
    assert all(isinstance(c, str) and c for c in classes)


@pytest.mark.parametrize('name', READER_NAMES)
def test_reader_fewshot_and_base_new(name, mini):
    cls = DATASETS.get(name)
    split = cls.AVAILABLE_SPLITS[0]
    ds = cls(data_root=mini[name], split=split)
    n = len(ds.metainfo['classes'])
    fs = FewShotDataset(dataset=ds, num_shots=2, seed=1)
    assert Counter(fs.get_gt_labels().tolist()) == {c: 2 for c in range(n)}
    base = BaseNewDataset(dataset=fs, subset='base')
    new = BaseNewDataset(dataset=fs, subset='new')
    half = (n + 1) // 2
    assert base.metainfo['classes'] == ds.metainfo['classes'][:half]
    assert new.metainfo['classes'] == ds.metainfo['classes'][half:]
    assert len(base) == 2 * half and len(new) == 2 * (n - half)
    assert sorted(set(new.get_gt_labels().tolist())) == list(range(n - half))
    for i in range(len(new)):
        info = new.get_data_info(i)
        assert ds.get_data_info(fs.indices[new.indices[i]])['gt_label'] == \
            info['gt_label'] + half


@pytest.mark.parametrize('name', READER_NAMES)
def test_reader_missing_root(name, tmp_path):
    cls = DATASETS.get(name)
    root = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError) as e:
        cls(data_root=root)
    msg = one_line(e)
    assert root in msg and 'does not exist' in msg and 'http' in msg


# --------------------------------------------------------- Caltech101
def test_caltech101_names_and_dropped_classes(mini, tmp_path):
    root = mini['CoOpCaltech101']
    ds = CoOpCaltech101(data_root=root)
    assert ds.metainfo['classes'] == ('face', 'leopard', 'accordion',
                                      'airplane')
    # the dropped folders exist on disk but are never classes
    assert osp.isdir(osp.join(root, '101_ObjectCategories', 'Faces_easy'))
    # a user's split that still lists them (raw folder names)
    root = copy_dataset(root, tmp_path)
    path = osp.join(root, CoOpCaltech101.SPLIT_FILE)
    with open(path) as f:
        split = json.load(f)
    for entries in split.values():
        for e in entries:
            e[1] += 1
        entries.insert(0, ['BACKGROUND_Google/image_0001.jpg', 0,
                           'BACKGROUND_Google'])
        entries.append(['Faces_easy/image_0001.jpg', 5, 'Faces_easy'])
        for e in entries:
            e[2] = {'face': 'Faces', 'airplane': 'airplanes'}.get(e[2], e[2])
    with open(path, 'w') as f:
        json.dump(split, f)
    ds = CoOpCaltech101(data_root=root, split='test')
    assert ds.metainfo['classes'] == ('face', 'leopard', 'accordion',
                                      'airplane')
    assert len(ds) == 12 and set(ds.get_gt_labels().tolist()) == {0, 1, 2, 3}
    # a generated split drops them too
    gen = generate_split(osp.join(root, '101_ObjectCategories'),
                         ignored=CoOpCaltech101.DROP_CLASSES,
                         classname_map=CoOpCaltech101.CLASSNAME_MAP)
    assert {e[2] for e in gen['train']} == {'face', 'leopard', 'accordion',
                                            'airplane'}


# ------------------------------------------------------- FGVCAircraft
def test_fgvc_lists(mini, tmp_path):
    root = mini['CoOpFGVCAircraft']
    ds = CoOpFGVCAircraft(data_root=root, split='val')
    assert ds.metainfo['classes'] == FGVC_VARIANTS  # variants.txt order
    with open(osp.join(root, 'images_variant_val.txt')) as f:
        first = f.readline().split(' ', 1)
    info = ds.get_data_info(0)
    assert info['img_path'] == osp.join(root, 'images', first[0] + '.jpg')
    assert ds.metainfo['classes'][info['gt_label']] == first[1].strip()
    assert 'F-16A/B' in ds.metainfo['classes']

    root = copy_dataset(root, tmp_path)
    with open(osp.join(root, 'images_variant_test.txt'), 'a') as f:
        f.write('0000001 Boeing 999\n')
    with pytest.raises(ValueError) as e:
        CoOpFGVCAircraft(data_root=root, split='train')
    assert "'Boeing 999'" in one_line(e)
    os.remove(osp.join(root, 'images_variant_test.txt'))
    with pytest.raises(FileNotFoundError) as e:
        CoOpFGVCAircraft(data_root=root)
    assert 'images_variant_test.txt' in one_line(e)
    assert 'fgvc-aircraft-2013b' in one_line(e)


# ---------------------------------------------------- ImageNet family
def test_imagenet_classnames_offline():
    names = imagenet_classnames()
    assert len(names) == 1000 and list(names) == sorted(names)
    assert names['n01440764'] == 'tench'
    assert names['n01443537'] == 'goldfish'
    assert list(names.values())[-1] == 'toilet paper'
    assert len(imagenet_wnids('imagenet_a')) == 200
    assert len(imagenet_wnids('imagenet_r')) == 200
    assert set(imagenet_wnids('imagenet_a')) <= set(names)
    assert set(imagenet_wnids('imagenet_r')) <= set(names)


def test_write_classnames_never_overwrites(tmp_path):
    path = str(tmp_path / 'classnames.txt')
    assert write_classnames(path)
    lines = open(path).read().splitlines()
    assert len(lines) == 1000 and lines[0] == 'n01440764 tench'
    assert read_classnames(path)['n01443537'] == 'goldfish'
    with open(path, 'w') as f:
        f.write('n01440764 my fish\n')
    assert not write_classnames(path)
    assert read_classnames(path) == {'n01440764': 'my fish'}


def test_imagenet_val_is_test_and_labels(mini):
    root = mini['CoOpImageNet']
    val = CoOpImageNet(data_root=root, split='val')
    test = CoOpImageNet(data_root=root, split='test')
    assert [val.get_data_info(i) for i in range(len(val))] == \
        [test.get_data_info(i) for i in range(len(test))]
    wnids = miniature_wnids()
    names = imagenet_classnames()
    assert val.metainfo['classes'] == tuple(names[w] for w in wnids)
    for i in range(len(val)):
        info = val.get_data_info(i)
        assert osp.basename(osp.dirname(info['img_path'])) == \
            wnids[info['gt_label']]


def test_imagenetv2_folder_i_is_line_i(mini):
    ds = CoOpImageNetV2(data_root=mini['CoOpImageNetV2'])
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        assert osp.basename(osp.dirname(info['img_path'])) == str(
            info['gt_label'])


@pytest.mark.parametrize('cls', [CoOpImageNetV2, CoOpImageNetSketch,
                                 CoOpImageNetA, CoOpImageNetR])
def test_variants_are_test_only(cls, mini):
    for split in ('train', 'val'):
        with pytest.raises(ValueError) as e:
            cls(data_root=mini[cls.__name__], split=split)
        assert 'test-only' in one_line(e)
    assert cls(data_root=mini[cls.__name__]).split == 'test'


def test_imagenet_a_subset_with_full_classnames(mini, tmp_path):
    """With the official 1000-line classnames.txt, A keeps its 200-wnid
    subset: only the wnids of A are classes (README.txt is ignored)."""
    root = copy_dataset(mini['CoOpImageNetA'], tmp_path)
    assert osp.isfile(osp.join(root, 'imagenet-a', 'README.txt'))
    os.remove(osp.join(root, 'classnames.txt'))
    write_classnames(osp.join(root, 'classnames.txt'))
    image_root = osp.join(root, 'imagenet-a')
    wnids_a = imagenet_wnids('imagenet_a')
    for w in wnids_a:
        if not osp.isdir(osp.join(image_root, w)):
            shutil.copytree(osp.join(image_root, miniature_wnids()[0]),
                            osp.join(image_root, w))
    ds = CoOpImageNetA(data_root=root)
    assert len(ds.metainfo['classes']) == 200
    names = imagenet_classnames()
    assert ds.metainfo['classes'] == tuple(names[w] for w in wnids_a)
    # a folder that is not one of A's classes
    os.makedirs(osp.join(image_root, 'n01440764'))
    with pytest.raises(ValueError) as e:
        CoOpImageNetA(data_root=root)
    assert 'n01440764' in one_line(e)


def test_imagenet_errors(mini, tmp_path):
    root = copy_dataset(mini['CoOpImageNet'], tmp_path)
    wnid = miniature_wnids()[1]
    shutil.rmtree(osp.join(root, 'images', 'train', wnid))
    with pytest.raises(FileNotFoundError) as e:
        CoOpImageNet(data_root=root, split='train')
    msg = one_line(e)
    assert '1 of 4 class folders' in msg and wnid in msg
    assert len(CoOpImageNet(data_root=root, split='test')) == 12
    os.makedirs(osp.join(root, 'images', 'val', 'n99999999'))
    with pytest.raises(ValueError) as e:
        CoOpImageNet(data_root=root, split='test')
    assert 'n99999999' in one_line(e)
    shutil.rmtree(osp.join(root, 'images', 'val', 'n99999999'))
    empty = osp.join(root, 'images', 'val', miniature_wnids()[0])
    for f in os.listdir(empty):
        os.remove(osp.join(empty, f))
    with pytest.raises(FileNotFoundError) as e:
        CoOpImageNet(data_root=root, split='test')
    assert empty in one_line(e) and 'no images' in one_line(e)
    os.remove(osp.join(root, 'classnames.txt'))
    with pytest.raises(FileNotFoundError) as e:
        CoOpImageNet(data_root=root, split='test', lazy_init=True)
    msg = one_line(e)
    assert 'classnames.txt' in msg and '--make-classnames' in msg


# ------------------------------------------------------- user's data
@pytest.mark.heavy
def test_custom_folders_split_is_seeded(mini):
    root = mini['CoOpCustomDataset']
    sizes = {}
    for split in ('train', 'val', 'test'):
        ds = CoOpCustomDataset(data_root=root, split=split)
        assert ds.metainfo['classes'] == CUSTOM_CLASSES
        assert ds.metainfo['dataset'] == 'custom'
        sizes[split] = len(ds)
    # 9 images per class: round(4.5)=4 train, round(1.8)=2 val, 3 test
    assert sizes == {'train': 16, 'val': 8, 'test': 12}

    def files(seed, split='train'):
        ds = CoOpCustomDataset(data_root=root, split=split, split_seed=seed)
        return [ds.get_data_info(i)['img_path'] for i in range(len(ds))]

    assert files(1) == files(1)
    assert files(1) != files(2)
    every = set(files(1)) | set(files(1, 'val')) | set(files(1, 'test'))
    assert len(every) == 36  # the parts are disjoint and complete


def test_custom_split_file_from_config(mini, tmp_path):
    root = copy_dataset(mini['CoOpCustomDataset'], tmp_path)
    split = {'train': [['cat/cat_1.jpg', 0, 'cat'], ['owl/owl_1.jpg', 1,
                                                     'snowy_owl']],
             'test': [['cat/cat_2.jpg', 0, 'cat']]}
    with open(osp.join(root, 'mine.json'), 'w') as f:
        json.dump(split, f)
    ds = DATASETS.build(dict(type='CoOpCustomDataset', data_root=root,
                             split_file='mine.json', template='{}.'))
    assert ds.metainfo['classes'] == ('cat', 'snowy_owl')
    assert ds.metainfo['template'] == '{}.' and len(ds) == 2
    with pytest.raises(ValueError) as e:
        CoOpCustomDataset(data_root=root, split_file='mine.json', split='val')
    assert "'val' split" in one_line(e) and 'empty' in one_line(e)
    with pytest.raises(FileNotFoundError) as e:
        CoOpCustomDataset(data_root=root, split_file='nope.json')
    assert osp.join(root, 'nope.json') in one_line(e)
    with pytest.raises(FileNotFoundError) as e:
        CoOpCustomDataset(data_root=root, image_dir='pics')
    assert osp.join(root, 'pics') in one_line(e)


def test_generate_split_too_few_images(tmp_path):
    (tmp_path / 'a').mkdir()
    with pytest.raises(ValueError) as e:
        generate_split(str(tmp_path))
    assert 'has 0 images' in one_line(e)
    with pytest.raises(ValueError) as e:
        generate_split(str(tmp_path / 'a'))
    assert 'no class folders' in one_line(e)


def test_generated_split_file_warns(mini, tmp_path):
    root = copy_dataset(mini['CoOpCustomDataset'], tmp_path)
    split = generate_split(root)
    with open(osp.join(root, 'gen.json'), 'w') as f:
        json.dump({'generated_by': 'test', **split}, f)
    records = []

    class Collect(logging.Handler):

        def emit(self, record):
            records.append(record.getMessage())

    logger = MMLogger.get_current_instance()
    handler = Collect()
    logger.addHandler(handler)
    try:
        CoOpCustomDataset(data_root=root, split_file='gen.json')
    finally:
        logger.removeHandler(handler)
    assert any('NOT comparable' in r for r in records)


# ------------------------------------------------------- determinism
def test_fewshot_golden_values():
    """random.Random(int seed).sample is stable across Python versions
    (3.2+); these values pin the sampling rule."""
    labels = [0] * 10 + [1] * 10 + [2] * 3
    assert fewshot_indices(labels, 4, 1) == [2, 1, 4, 0, 17, 19, 18, 15, 20,
                                             21, 22]
    assert fewshot_indices(labels, 4, 2) == [0, 1, 8, 2, 12, 14, 18, 17, 20,
                                             21, 22]


def test_fewshot_cache_portable_imagenet(mini, tmp_path):
    root_a = copy_dataset(mini['CoOpImageNet'], tmp_path / 'a')
    cache = str(tmp_path / 'shots.json')
    fs_a = FewShotDataset(dataset=CoOpImageNet(data_root=root_a),
                          num_shots=1, seed=3, cache_file=cache)
    paths = json.load(open(cache))['paths']
    assert all(p.count('/') == 1 and p.startswith('n0') for p in paths)
    root_b = copy_dataset(root_a, tmp_path / 'b')
    shutil.rmtree(root_a)
    fs_b = FewShotDataset(dataset=CoOpImageNet(data_root=root_b),
                          num_shots=1, seed=3, cache_file=cache)
    assert fs_b.indices == fs_a.indices


# ----------------------------------------------------- bad images
def test_undecodable_image_is_named(mini, tmp_path):
    root = copy_dataset(mini['CoOpDTD'], tmp_path)
    ds = DATASETS.get('CoOpDTD')(data_root=root, split='test')
    bad = ds.get_data_info(0)['img_path']
    with open(bad, 'wb') as f:
        f.write(b'not a jpeg at all')
    load = TRANSFORMS.build(dict(type='CheckedLoadImageFromFile'))
    with pytest.raises(ValueError) as e:
        load(dict(img_path=bad))
    msg = one_line(e)
    assert bad in msg and 'cannot decode' in msg
    ok = load(dict(img_path=ds.get_data_info(1)['img_path']))
    assert ok['img'].shape == (32, 32, 3)
    with pytest.raises(FileNotFoundError):
        load(dict(img_path=bad + '.missing'))
