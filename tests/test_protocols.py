"""The protocol configs (PROTOCOL.md): every family has few-shot leaves for
the 11 datasets and the shot variants, an xd and a dg config; schedules per
protocol; shot selection by --cfg-options agrees with the leaves; the xd
and dg evaluations name each split after its dataset, with its own class
names; xd and dg train the same ImageNet model."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmpl.datasets import READERS
from mmpl.evaluation.protocols import (BENCHMARK_DATASETS, DG_TARGETS,
                                       XD_TARGETS)
from mmpl.utils.config_tools import (data_root_options, iter_dataset_paths,
                                     num_shots_options)
from helpers import ROOT, offline_config

#: family folder -> method name prefix of its configs
FAMILIES = {'coop': 'coop', 'cocoop': 'cocoop', 'maple': 'maple',
            'tomm': 'ctp_tft', 'mpl': 'ftp_tvp', 'dgprompt': 'dgprompt',
            'ivlp': 'ivlp', 'promptsrc': 'promptsrc'}
_loaded = {}


def load(rel: str) -> Config:
    if rel not in _loaded:
        _loaded[rel] = Config.fromfile(osp.join(ROOT, 'configs', rel))
    return _loaded[rel]


def leaf(family: str, protocol: str, dataset: str = 'imagenet') -> str:
    return f'{family}/{FAMILIES[family]}_vitb16_{protocol}_{dataset}.py'


def test_every_family_has_every_protocol():
    for family, method in FAMILIES.items():
        names = {osp.basename(p) for p in glob.glob(
            osp.join(ROOT, 'configs', family, '*.py'))}
        for dataset in BENCHMARK_DATASETS:
            for protocol in ('b2n', 'fewshot16'):
                assert f'{method}_vitb16_{protocol}_{dataset}.py' in names
        for shots in (1, 2, 4, 8):
            assert f'{method}_vitb16_fewshot{shots}_eurosat.py' in names
        assert {f'{method}_vitb16_xd_imagenet.py',
                f'{method}_vitb16_dg_imagenet.py'} <= names


def test_fewshot_leaves_read_their_dataset_and_name_the_split_after_it():
    """Every 16-shot leaf (make test smokes one per family): all classes,
    16 shots of the dataset's reader, evaluated on its test set as split
    <slug> (metric <slug>/accuracy/top1)."""
    for family in FAMILIES:
        for slug in BENCHMARK_DATASETS:
            cfg = load(leaf(family, 'fewshot16', slug))
            reader = READERS[slug].__name__
            assert cfg.protocol == 'fewshot'
            train = cfg.train_dataloader.dataset
            assert (train.type, train.num_shots) == ('FewShotDataset', 16)
            assert (train.dataset.type, train.dataset.split) == (reader,
                                                                 'train')
            for loader in (cfg.val_dataloader, cfg.test_dataloader):
                assert list(loader) == [slug]
                assert (loader[slug].dataset.type,
                        loader[slug].dataset.split) == (reader, 'test')


@pytest.mark.parametrize('family', FAMILIES)
def test_shot_leaves_equal_cfg_options_of_the_16_shot_leaf(family):
    """fewshot<K>_eurosat.py == fewshot16_eurosat.py with the options that
    tools/run_benchmark.py --shots K passes (num_shots, epochs by shots)."""
    base = load(leaf(family, 'fewshot16', 'eurosat'))
    assert base.protocol == 'fewshot'
    for shots in (1, 2, 4, 8):
        variant = load(leaf(family, f'fewshot{shots}', 'eurosat'))
        expected = Config(base.to_dict())
        expected.merge_from_dict(num_shots_options(base, shots))
        for key in ('train_dataloader', 'train_cfg', 'model',
                    'optim_wrapper'):
            assert variant.to_dict()[key] == expected.to_dict()[key], key


def test_schedules_per_protocol():
    """PROTOCOL.md: CoOp 50/100/200 epochs by shots (1 -> 50, 2/4 -> 100,
    8/16 -> 200), the other methods one schedule for every protocol."""
    epochs = {k: load(leaf('coop', f'fewshot{k}', 'eurosat')).train_cfg
              .max_epochs for k in (1, 2, 4, 8, 16)}
    assert epochs == {1: 50, 2: 100, 4: 100, 8: 200, 16: 200}
    assert load(leaf('coop', 'xd')).train_cfg.max_epochs == 200
    assert load(leaf('coop', 'b2n', 'eurosat')).train_cfg.max_epochs == 50
    for family, (lr, max_epochs, batch) in {
            'cocoop': (2e-3, 10, 1), 'maple': (3.5e-3, 5, 4),
            'dgprompt': (3.5e-3, 5, 4), 'tomm': (2e-3, 10, 1),
            'mpl': (2e-3, 10, 1), 'ivlp': (2.5e-3, 20, 4),
            'promptsrc': (2.5e-3, 20, 4)}.items():
        for protocol, dataset in (('b2n', 'dtd'), ('fewshot16', 'dtd'),
                                  ('fewshot1', 'eurosat'), ('xd', 'imagenet'),
                                  ('dg', 'imagenet')):
            cfg = load(leaf(family, protocol, dataset))
            if family in ('ivlp', 'promptsrc') and 'fewshot' in protocol:
                # the PromptSRC repository's few-shot schedule: 50 epochs
                assert cfg.train_cfg.max_epochs == 50, cfg.filename
                continue
            assert (cfg.optim_wrapper.optimizer.lr, cfg.train_cfg.max_epochs,
                    cfg.train_dataloader.batch_size) == (lr, max_epochs,
                                                         batch), cfg.filename


@pytest.mark.parametrize('protocol,targets', [('xd', XD_TARGETS),
                                              ('dg', DG_TARGETS)])
def test_transfer_configs_train_on_imagenet_and_name_splits(protocol,
                                                            targets):
    for family in FAMILIES:
        cfg = load(leaf(family, protocol))
        assert cfg.protocol == protocol
        train = cfg.train_dataloader.dataset
        assert (train.type, train.num_shots) == ('FewShotDataset', 16)
        assert train.dataset.type == 'CoOpImageNet'
        assert list(cfg.val_dataloader) == ['imagenet']
        # one split per dataset, named after its slug: <slug>/accuracy/top1
        assert list(cfg.test_dataloader) == ['imagenet', *targets]
        for name, split in cfg.test_dataloader.items():
            reader = READERS[name]
            assert split.dataset.type == reader.__name__
            assert split.dataset.split == 'test'


def test_data_roots_follow_the_benchmark_folders():
    """--data-root ROOT puts each dataset at ROOT/<PROTOCOL.md dir>."""
    for rel in ('coop/coop_vitb16_xd_imagenet.py',
                'coop/coop_vitb16_dg_imagenet.py',
                *[f'coop/coop_vitb16_fewshot16_{d}.py'
                  for d in BENCHMARK_DATASETS]):
        cfg = load(rel)
        options = data_root_options(cfg, '/data')
        assert options
        for key, node in iter_dataset_paths(cfg):
            if 'data_root' in node:
                slug = next(s for s, r in READERS.items()
                            if r.__name__ == node['type'])
                assert options[f'{key}.data_root'] == osp.join(
                    '/data', READERS[slug].CARD.dir)


def test_dg_trains_as_xd():
    """The planner tests the dg config with the xd training (one ImageNet
    model per seed) because the two configs train identically."""
    from mmpl.apis.benchmark_plan import BenchmarkPlanner
    planner = BenchmarkPlanner('work')
    for family in FAMILIES:
        dg = osp.join(ROOT, 'configs', leaf(family, 'dg'))
        assert planner._training_config(dg) == osp.join(
            ROOT, 'configs', leaf(family, 'xd'))


@pytest.mark.heavy
def test_dg_evaluates_each_variant_with_its_own_class_names(tmp_path):
    """ImageNet-A gets its own names (a renamed classnames.txt shows it):
    the model's classes during each split are that split's classes."""
    from mmengine.runner import Runner
    cfg = offline_config(osp.join(ROOT, 'configs', leaf('coop', 'dg')),
                         tmp_path, name='dg_classes')
    names_file = tmp_path / 'data' / 'imagenet-adversarial' / \
        'classnames.txt'
    lines = names_file.read_text().splitlines()
    names_file.write_text(''.join(
        f'{line.split(" ", 1)[0]} adversarial {line.split(" ", 1)[1]}\n'
        for line in lines))
    runner = Runner.from_cfg(cfg)
    model = runner.model
    seen = []
    original = model.predict

    def spy(*args, **kwargs):
        seen.append(tuple(model.classnames))
        return original(*args, **kwargs)

    model.predict = spy
    metrics = runner.test()
    splits = runner.test_loop._splits.dataloaders
    expected = [tuple(loader.dataset.metainfo['classes'])
                for loader in splits.values() for _ in loader]
    assert seen == expected
    classes_a = tuple(splits['imagenet_a'].dataset.metainfo['classes'])
    assert all(c.startswith('adversarial ') for c in classes_a)
    assert not any(c.startswith('adversarial ') for c in
                   splits['imagenet_r'].dataset.metainfo['classes'])
    assert set(metrics) == {f'{d}/accuracy/top1'
                            for d in ('imagenet', *DG_TARGETS)}
