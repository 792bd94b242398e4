"""Tests of mmpl.datasets: CoOp split reader, few-shot and base/new
wrappers, templates and the miniature generator.

Fast, offline, everything in tmp_path."""
import json
import math
import os
import os.path as osp
import random
import shutil
from collections import Counter, OrderedDict

import numpy as np
import pytest
from mmpretrain.registry import DATASETS
from mmpretrain.utils import register_all_modules
from PIL import Image

from mmpl.datasets import (DATASET_TEMPLATES, DEFAULT_TEMPLATE, BaseNewDataset,
                           CoOpEuroSAT, CoOpSplitDataset, FewShotDataset,
                           base_new_labels)
from mmpl.testing import MARKER, write_miniature
from helpers import copy_dataset, one_line

register_all_modules(init_default_scope=True)

EUROSAT_NAMES = ('Annual Crop Land', 'Forest', 'Herbaceous Vegetation Land',
                 'Highway or Road', 'Industrial Buildings', 'Pasture Land',
                 'Permanent Crop Land', 'Residential Buildings', 'River',
                 'Sea or Lake')
EUROSAT_FOLDERS = ('AnnualCrop', 'Forest', 'HerbaceousVegetation', 'Highway',
                   'Industrial', 'Pasture', 'PermanentCrop', 'Residential',
                   'River', 'SeaLake')


@pytest.fixture(scope='module')
def eurosat_root(tmp_path_factory):
    """A shared, read-only miniature EuroSAT (4/2/3 images per class)."""
    return write_miniature('CoOpEuroSAT', str(tmp_path_factory.mktemp('d')))


def _edit_split(root, fn):
    path = osp.join(root, 'split_zhou_EuroSAT.json')
    with open(path) as f:
        split = json.load(f)
    fn(split)
    with open(path, 'w') as f:
        json.dump(split, f)


def _coop_fewshot_reference(labels, k, seed):
    """Direct re-implementation of CoOp's generate_fewshot_dataset."""
    tracker = OrderedDict()
    for i, lb in enumerate(labels):
        tracker.setdefault(lb, []).append(i)
    rng = random.Random(seed)
    out = []
    for items in tracker.values():
        out.extend(rng.sample(items, k) if len(items) >= k else items)
    return out


# --------------------------------------------------------------- templates
def test_templates():
    assert DEFAULT_TEMPLATE == 'a photo of a {}.'
    assert DATASET_TEMPLATES['eurosat'] == 'a centered satellite photo of {}.'
    assert DATASET_TEMPLATES['dtd'] == '{} texture.'
    assert DATASET_TEMPLATES['food101'] == 'a photo of {}, a type of food.'
    assert DATASET_TEMPLATES['ucf101'] == 'a photo of a person doing {}.'
    for s in ('imagenetv2', 'imagenet_sketch', 'imagenet_a', 'imagenet_r'):
        assert DATASET_TEMPLATES[s] == DATASET_TEMPLATES['imagenet']
    assert len(DATASET_TEMPLATES) == 15
    assert all('{}' in t for t in DATASET_TEMPLATES.values())


# ------------------------------------------------------------------ reader
def test_reader_on_miniature(eurosat_root):
    sizes = {'train': 4, 'val': 2, 'test': 3}
    for split, per_class in sizes.items():
        ds = CoOpEuroSAT(data_root=eurosat_root, split=split)
        assert len(ds) == 10 * per_class
        meta = ds.metainfo
        assert meta['classes'] == EUROSAT_NAMES
        assert meta['template'] == 'a centered satellite photo of {}.'
        assert meta['dataset'] == 'eurosat'
        labels = ds.get_gt_labels()
        assert sorted(set(labels.tolist())) == list(range(10))
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            assert osp.isabs(info['img_path']) and osp.exists(info['img_path'])
            # label order = sorted folder order
            folder = osp.basename(osp.dirname(info['img_path']))
            assert EUROSAT_FOLDERS.index(folder) == info['gt_label']
            assert isinstance(info['gt_label'], int)


def test_reader_split_file_order_and_paths(eurosat_root):
    with open(osp.join(eurosat_root, 'split_zhou_EuroSAT.json')) as f:
        entries = json.load(f)['test']
    ds = CoOpEuroSAT(data_root=eurosat_root, split='test')
    got = [(ds.get_data_info(i)['img_path'], ds.get_data_info(i)['gt_label'])
           for i in range(len(ds))]
    want = [(osp.join(eurosat_root, '2750', rel), lb)
            for rel, lb, _ in entries]
    assert got == want


def test_reader_lazy_init_has_metainfo(eurosat_root):
    ds = CoOpEuroSAT(data_root=eurosat_root, split='val', lazy_init=True)
    assert ds.metainfo['classes'] == EUROSAT_NAMES
    assert len(ds) == 20


def test_reader_template_override_and_generic(eurosat_root):
    ds = CoOpEuroSAT(data_root=eurosat_root, template='{}.')
    assert ds.metainfo['template'] == '{}.'
    gen = CoOpSplitDataset(data_root=eurosat_root, split='val',
                           split_file='split_zhou_EuroSAT.json',
                           image_dir='2750', slug='eurosat')
    assert gen.metainfo['template'] == DATASET_TEMPLATES['eurosat']
    assert len(gen) == 20
    plain = CoOpSplitDataset(data_root=eurosat_root,
                             split_file='split_zhou_EuroSAT.json',
                             image_dir='2750')
    assert plain.metainfo['template'] == DEFAULT_TEMPLATE


def test_reader_raw_folder_names_mapped(eurosat_root, tmp_path):
    root = copy_dataset(eurosat_root, tmp_path)

    def to_raw(split):
        for entries in split.values():
            for e in entries:
                e[2] = EUROSAT_FOLDERS[e[1]]

    _edit_split(root, to_raw)
    assert CoOpEuroSAT(data_root=root).metainfo['classes'] == EUROSAT_NAMES
    assert CoOpEuroSAT.normalize_classname('Sea or Lake') == 'Sea or Lake'


# ------------------------------------------------------------------ errors
def test_error_missing_root(tmp_path):
    root = str(tmp_path / 'nowhere' / 'eurosat')
    with pytest.raises(FileNotFoundError) as e:
        CoOpEuroSAT(data_root=root)
    msg = one_line(e)
    assert root in msg
    assert osp.join(root, '2750', '<class>/*.jpg') in msg
    assert osp.join(root, 'split_zhou_EuroSAT.json') in msg


def test_error_missing_split_file(eurosat_root, tmp_path):
    root = copy_dataset(eurosat_root, tmp_path)
    os.remove(osp.join(root, 'split_zhou_EuroSAT.json'))
    with pytest.raises(FileNotFoundError) as e:
        CoOpEuroSAT(data_root=root)
    msg = one_line(e)
    assert osp.join(root, 'split_zhou_EuroSAT.json') in msg
    assert 'split_zhou_' in msg and 'DATASETS.md' in msg


def test_error_missing_images(eurosat_root, tmp_path):
    root = copy_dataset(eurosat_root, tmp_path)
    os.remove(osp.join(root, '2750', 'Forest', 'Forest_1.jpg'))
    os.remove(osp.join(root, '2750', 'River', 'River_2.jpg'))
    with pytest.raises(FileNotFoundError) as e:
        CoOpEuroSAT(data_root=root, split='train')
    msg = one_line(e)
    assert '2 of 40' in msg
    assert osp.join(root, '2750', 'Forest', 'Forest_1.jpg') in msg
    # the test split does not list those files
    assert len(CoOpEuroSAT(data_root=root, split='test')) == 30
    # lazy: error when the list is loaded
    ds = CoOpEuroSAT(data_root=root, split='train', lazy_init=True)
    with pytest.raises(FileNotFoundError):
        ds.full_init()


def test_error_missing_image_root(eurosat_root, tmp_path):
    root = copy_dataset(eurosat_root, tmp_path)
    shutil.rmtree(osp.join(root, '2750'))
    with pytest.raises(FileNotFoundError) as e:
        CoOpEuroSAT(data_root=root)
    assert osp.join(root, '2750') in one_line(e)


def test_error_non_contiguous_labels(eurosat_root, tmp_path):
    root = copy_dataset(eurosat_root, tmp_path)

    def drop_label_3(split):
        for k in split:
            split[k] = [e for e in split[k] if e[1] != 3]

    _edit_split(root, drop_label_3)
    with pytest.raises(ValueError) as e:
        CoOpEuroSAT(data_root=root)
    msg = one_line(e)
    assert 'contiguous' in msg and '[3]' in msg


def test_error_label_with_two_names(eurosat_root, tmp_path):
    root = copy_dataset(eurosat_root, tmp_path)

    def rename(split):
        split['test'][0][2] = 'Something Else'

    _edit_split(root, rename)
    with pytest.raises(ValueError) as e:
        CoOpEuroSAT(data_root=root, split='train')
    msg = one_line(e)
    assert 'label 0' in msg and 'Something Else' in msg


def test_error_unknown_split(eurosat_root):
    with pytest.raises(ValueError) as e:
        CoOpEuroSAT(data_root=eurosat_root, split='training')
    assert "'training'" in one_line(e)


def test_error_through_registry(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        DATASETS.build(dict(type='CoOpEuroSAT', data_root=str(tmp_path / 'x')))
    assert '2750' in one_line(e)


# ----------------------------------------------------------------- fewshot
def test_fewshot_counts_and_order(eurosat_root):
    ds = CoOpEuroSAT(data_root=eurosat_root)
    labels = ds.get_gt_labels().tolist()
    for k in (1, 2, 4, 16):
        fs = FewShotDataset(dataset=ds, num_shots=k, seed=3)
        counts = Counter(fs.get_gt_labels().tolist())
        assert counts == {c: min(k, 4) for c in range(10)}
        assert fs.indices == _coop_fewshot_reference(labels, k, 3)
        assert fs.metainfo == ds.metainfo
        assert fs.get_data_info(0)['img_path'] == ds.get_data_info(
            fs.indices[0])['img_path']


def test_fewshot_class_with_fewer_than_k(eurosat_root, tmp_path):
    root = copy_dataset(eurosat_root, tmp_path)

    def shrink(split):  # class 2 keeps one train image
        seen = []
        keep = []
        for e in split['train']:
            if e[1] == 2:
                if seen:
                    continue
                seen.append(e)
            keep.append(e)
        split['train'] = keep

    _edit_split(root, shrink)
    fs = FewShotDataset(dataset=CoOpEuroSAT(data_root=root), num_shots=3)
    counts = Counter(fs.get_gt_labels().tolist())
    assert counts[2] == 1 and counts[0] == 3 and len(fs) == 28


def test_fewshot_seed_determinism(eurosat_root):
    ds = CoOpEuroSAT(data_root=eurosat_root)

    def files(seed):
        fs = FewShotDataset(dataset=ds, num_shots=2, seed=seed)
        return [fs.get_data_info(i)['img_path'] for i in range(len(fs))]

    state = random.getstate()
    assert files(1) == files(1)
    assert files(1) != files(2)
    assert random.getstate() == state  # global generator untouched


def test_fewshot_bad_num_shots(eurosat_root):
    ds = CoOpEuroSAT(data_root=eurosat_root)
    for bad in (0, -1, 1.5, True, '4'):
        with pytest.raises(ValueError) as e:
            FewShotDataset(dataset=ds, num_shots=bad)
        assert 'num_shots' in one_line(e)


def test_fewshot_cache_portable(eurosat_root, tmp_path):
    root_a = copy_dataset(eurosat_root, tmp_path, 'machine_a')
    cache = str(tmp_path / 'cache' / 'shot_2-seed_5.json')
    fs_a = FewShotDataset(dataset=CoOpEuroSAT(data_root=root_a), num_shots=2,
                          seed=5, cache_file=cache)
    with open(cache) as f:
        payload = json.load(f)
    assert payload['num_shots'] == 2 and payload['seed'] == 5
    assert all(not osp.isabs(p) for p in payload['paths'])
    assert payload['paths'][0].startswith('AnnualCrop/')
    rel_a = [osp.relpath(fs_a.get_data_info(i)['img_path'],
                         osp.join(root_a, '2750')) for i in range(len(fs_a))]
    assert rel_a == payload['paths']

    # another machine: same relative files, read from the cache
    root_b = copy_dataset(root_a, tmp_path, 'machine_b')
    shutil.rmtree(root_a)
    mtime = os.path.getmtime(cache)
    fs_b = FewShotDataset(dataset=CoOpEuroSAT(data_root=root_b), num_shots=2,
                          seed=5, cache_file=cache)
    rel_b = [osp.relpath(fs_b.get_data_info(i)['img_path'],
                         osp.join(root_b, '2750')) for i in range(len(fs_b))]
    assert rel_b == rel_a
    assert os.path.getmtime(cache) == mtime


def test_fewshot_cache_is_authoritative_and_never_overwritten(
        eurosat_root, tmp_path):
    ds = CoOpEuroSAT(data_root=eurosat_root)
    cache = str(tmp_path / 'c.json')
    chosen = ['Forest/Forest_3.jpg', 'AnnualCrop/AnnualCrop_1.jpg']
    with open(cache, 'w') as f:
        json.dump(dict(num_shots=1, seed=1, paths=chosen), f)
    before = open(cache).read()
    fs = FewShotDataset(dataset=ds, num_shots=1, seed=1, cache_file=cache)
    assert [osp.relpath(fs.get_data_info(i)['img_path'], ds.img_prefix)
            for i in range(len(fs))] == chosen
    assert fs.get_gt_labels().tolist() == [1, 0]
    assert open(cache).read() == before


def test_fewshot_cache_mismatch_errors(eurosat_root, tmp_path):
    ds = CoOpEuroSAT(data_root=eurosat_root)
    cache = str(tmp_path / 'c.json')
    FewShotDataset(dataset=ds, num_shots=2, seed=1, cache_file=cache)
    before = open(cache).read()
    with pytest.raises(ValueError) as e:
        FewShotDataset(dataset=ds, num_shots=4, seed=1, cache_file=cache)
    assert 'num_shots=2' in one_line(e)
    with pytest.raises(ValueError) as e:
        FewShotDataset(dataset=ds, num_shots=2, seed=2, cache_file=cache)
    assert 'seed=1' in one_line(e)
    assert open(cache).read() == before

    bad = str(tmp_path / 'bad.json')
    with open(bad, 'w') as f:
        json.dump(dict(num_shots=1, seed=1,
                       paths=['Forest/Forest_1.jpg', 'Nope/nope.jpg']), f)
    with pytest.raises(ValueError) as e:
        FewShotDataset(dataset=ds, num_shots=1, seed=1, cache_file=bad)
    assert "'Nope/nope.jpg'" in one_line(e)


def test_fewshot_export_samples(eurosat_root, tmp_path):
    ds = CoOpEuroSAT(data_root=eurosat_root)
    fs = FewShotDataset(dataset=ds, num_shots=2, seed=7)
    out = str(tmp_path / 'exp.json')
    fs.export_samples(out)
    with pytest.raises(FileExistsError):
        fs.export_samples(out)
    again = FewShotDataset(dataset=ds, num_shots=2, seed=7, cache_file=out)
    assert again.indices == fs.indices


# ---------------------------------------------------------------- base/new
@pytest.mark.parametrize('n', [1, 2, 5, 10, 11, 47])
def test_base_new_rule(n):
    base, new = base_new_labels(n, 'base'), base_new_labels(n, 'new')
    assert base == list(range(math.ceil(n / 2)))
    assert new == list(range(math.ceil(n / 2), n))
    assert base_new_labels(n, 'all') == list(range(n))


def test_base_new_on_eurosat(eurosat_root):
    ds = CoOpEuroSAT(data_root=eurosat_root, split='test')
    base = BaseNewDataset(dataset=ds, subset='base')
    new = BaseNewDataset(dataset=ds, subset='new')
    every = BaseNewDataset(dataset=ds, subset='all')
    assert len(base) == len(new) == 15 and len(every) == 30
    assert base.metainfo['classes'] == EUROSAT_NAMES[:5]
    assert new.metainfo['classes'] == EUROSAT_NAMES[5:]
    assert every.metainfo['classes'] == EUROSAT_NAMES
    for w in (base, new, every):
        assert w.metainfo['template'] == ds.metainfo['template']
        assert w.metainfo['dataset'] == 'eurosat'
    assert sorted(set(new.get_gt_labels().tolist())) == [0, 1, 2, 3, 4]
    for i in range(len(new)):
        info = new.get_data_info(i)
        folder = osp.basename(osp.dirname(info['img_path']))
        assert EUROSAT_FOLDERS.index(folder) == info['gt_label'] + 5
        assert new.get_cat_ids(i) == [info['gt_label']]
    assert every.get_gt_labels().tolist() == ds.get_gt_labels().tolist()
    with pytest.raises(ValueError):
        BaseNewDataset(dataset=ds, subset='novel')


def test_base_new_odd_number_of_classes(eurosat_root, tmp_path):
    root = copy_dataset(eurosat_root, tmp_path)

    def drop_last_class(split):
        for k in split:
            split[k] = [e for e in split[k] if e[1] != 9]

    _edit_split(root, drop_last_class)  # 9 classes: base 5, new 4
    ds = CoOpEuroSAT(data_root=root, split='val')
    base = BaseNewDataset(dataset=ds, subset='base')
    new = BaseNewDataset(dataset=ds, subset='new')
    assert base.metainfo['classes'] == EUROSAT_NAMES[:5]
    assert new.metainfo['classes'] == EUROSAT_NAMES[5:9]
    assert len(base) == 10 and len(new) == 8


# ------------------------------------------------------- nesting/pipeline
def _pipeline(size=24):
    return [
        dict(type='LoadImageFromFile'),
        dict(type='ResizeEdge', scale=size, edge='short',
             interpolation='bicubic'),
        dict(type='CenterCrop', crop_size=size),
        dict(type='PackInputs'),
    ]


def test_nested_build_and_getitem(eurosat_root, tmp_path):
    cache = str(tmp_path / 'shots.json')
    cfg = dict(
        type='BaseNewDataset', subset='new',
        dataset=dict(
            type='FewShotDataset', num_shots=2, seed=1, cache_file=cache,
            dataset=dict(type='CoOpEuroSAT', data_root=eurosat_root,
                         split='train', pipeline=_pipeline())))
    ds = DATASETS.build(cfg)
    assert isinstance(ds, BaseNewDataset)
    assert isinstance(ds.dataset, FewShotDataset)
    assert len(ds) == 10 and osp.exists(cache)
    assert ds.metainfo['classes'] == EUROSAT_NAMES[5:]
    assert ds.pipeline is ds.dataset.dataset.pipeline
    labels = ds.get_gt_labels()
    for i in (0, 3, 9):
        out = ds[i]
        sample = out['data_samples']
        assert tuple(out['inputs'].shape) == (3, 24, 24)
        assert int(sample.gt_label.item()) == labels[i]
        assert int(sample.gt_label.item()) == ds.get_data_info(i)['gt_label']
        assert labels[i] < 5


def test_runner_style_dataloader(eurosat_root):
    from mmengine.dataset import DefaultSampler, pseudo_collate
    from torch.utils.data import DataLoader
    ds = DATASETS.build(dict(
        type='BaseNewDataset', subset='base', lazy_init=True,
        dataset=dict(type='CoOpEuroSAT', data_root=eurosat_root,
                     split='test', test_mode=True, pipeline=_pipeline())))
    ds.full_init()
    loader = DataLoader(ds, batch_size=4, collate_fn=pseudo_collate,
                        sampler=DefaultSampler(ds, shuffle=False))
    seen = []
    for batch in loader:
        seen += [int(s.gt_label.item()) for s in batch['data_samples']]
    assert seen == ds.get_gt_labels().tolist()
    assert len(seen) == 15


def test_wrappers_on_mmpretrain_custom_dataset(tmp_path):
    root = tmp_path / 'custom'
    for c, name in enumerate(['cat', 'dog', 'owl']):
        (root / name).mkdir(parents=True)
        for i in range(3 + c):
            Image.new('RGB', (16, 16), (80 * c, 10 * i, 0)).save(
                root / name / f'{i}.jpg')
    inner = dict(type='CustomDataset', data_root=str(root),
                 pipeline=_pipeline(8))
    fs = FewShotDataset(dataset=inner, num_shots=3, seed=0,
                        cache_file=str(tmp_path / 'c.json'))
    assert Counter(fs.get_gt_labels().tolist()) == {0: 3, 1: 3, 2: 3}
    with open(tmp_path / 'c.json') as f:
        assert json.load(f)['paths'][0].startswith('cat/')
    new = BaseNewDataset(dataset=fs, subset='new')
    assert new.metainfo['classes'] == ('owl', )
    assert len(new) == 3 and set(new.get_gt_labels().tolist()) == {0}
    out = new[0]
    assert int(out['data_samples'].gt_label.item()) == 0
    base = BaseNewDataset(dataset=dict(type='CustomDataset',
                                       data_root=str(root)), subset='base')
    assert base.metainfo['classes'] == ('cat', 'dog') and len(base) == 7


# ---------------------------------------------------------------- miniature
def test_miniature_layout_and_determinism(tmp_path):
    root = write_miniature('CoOpEuroSAT', str(tmp_path / 'a'),
                           images_per_class=(1, 1, 1), image_size=16, seed=3)
    assert root == str(tmp_path / 'a' / 'eurosat')
    assert osp.exists(osp.join(root, MARKER))
    img = Image.open(osp.join(root, '2750', 'SeaLake', 'SeaLake_1.jpg'))
    assert img.mode == 'RGB' and img.size == (16, 16)
    with open(osp.join(root, 'split_zhou_EuroSAT.json')) as f:
        split = json.load(f)
    assert split['train'][0] == ['AnnualCrop/AnnualCrop_1.jpg', 0,
                                 'Annual Crop Land']
    other = write_miniature('CoOpEuroSAT', str(tmp_path / 'b'),
                            images_per_class=(1, 1, 1), image_size=16, seed=3)
    rel = osp.join('2750', 'Forest', 'Forest_2.jpg')
    assert (open(osp.join(root, rel), 'rb').read()
            == open(osp.join(other, rel), 'rb').read())
    # rerun on its own folder is fine
    assert write_miniature('CoOpEuroSAT', str(tmp_path / 'a'),
                           images_per_class=(1, 1, 1)) == root


def test_miniature_refuses_user_data(tmp_path):
    user = tmp_path / 'data' / 'eurosat'
    user.mkdir(parents=True)
    (user / 'mine.txt').write_text('precious')
    with pytest.raises(FileExistsError) as e:
        write_miniature('CoOpEuroSAT', str(tmp_path / 'data'))
    assert str(user) in one_line(e)
    assert os.listdir(user) == ['mine.txt']
    with pytest.raises(KeyError):
        write_miniature('NoSuchDataset', str(tmp_path / 'x'))


def test_miniature_classes_are_separable(eurosat_root):
    """A nearest-class-mean on raw pixels separates the classes (learnable)."""
    def load(split):
        ds = CoOpEuroSAT(data_root=eurosat_root, split=split)
        x = np.stack([np.asarray(Image.open(ds.get_data_info(i)['img_path']),
                                 dtype=np.float32).ravel()
                      for i in range(len(ds))])
        return x, ds.get_gt_labels()

    xtr, ytr = load('train')
    xte, yte = load('test')
    means = np.stack([xtr[ytr == c].mean(0) for c in range(10)])
    pred = ((xte[:, None] - means[None]) ** 2).sum(-1).argmin(1)
    assert (pred == yte).mean() >= 0.9
