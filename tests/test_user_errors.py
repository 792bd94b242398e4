"""Every mistake a user makes gets one line saying what to fix (exit 2),
found before the runner is built where possible: a table of bad inputs to
the tools, run in process (argv in, SystemExit / return code and stderr
out)."""
import os.path as osp

import pytest
import torch

from mmpl.testing import TINY_ARCH
from helpers import load_tool, offline_config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
COOP = osp.join(ROOT, 'configs/coop/coop_vitb16_b2n_eurosat.py')
TINY = [f'model.clip.arch={TINY_ARCH}', 'model.clip.pretrained=None']

train_tool = load_tool('tools/train.py')
test_tool = load_tool('tools/test.py')
smoke_tool = load_tool('tools/misc/smoke.py')
report_tool = load_tool('tools/analysis_tools/report.py')
infer_tool = load_tool('tools/infer.py')
convert_tool = load_tool('tools/model_converters/official_to_mmpl.py')
profile_tool = load_tool('projects/lab/tools/profile_step.py')
demo_tool = load_tool('projects/lab/tools/demo.py')
TOOLS = dict(train=train_tool, test=test_tool, smoke=smoke_tool,
             report=report_tool, infer=infer_tool, convert=convert_tool,
             profile=profile_tool, demo=demo_tool)
MAPLE = osp.join(ROOT, 'configs/maple/maple_vitb16_b2n_eurosat.py')
EXAMPLE = osp.join(ROOT, 'configs/examples/'
                   'coop_vitb16_b2n_mmpretrain_custom.py')


def _files(tmp_path) -> dict:
    """The user's files the bad inputs name."""
    broken = tmp_path / 'broken.py'
    broken.write_text("_base_ = ['./x.py']\nmodel = dict(type='A'\n")
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint at all')
    truncated = tmp_path / 'truncated.pth'
    torch.save({'state_dict': {'x': torch.zeros(1000)}}, str(truncated))
    truncated.write_bytes(truncated.read_bytes()[:300])
    a_file = tmp_path / 'a_file'
    a_file.write_text('mine')
    (tmp_path / 'mine.json').write_text('{"mine": 1}')
    (tmp_path / 'empty_run').mkdir()
    other_arch = tmp_path / 'other_arch.pt'  # a plain state dict
    torch.save({'visual.conv1.weight': torch.zeros(8, 3, 4, 4)},
               str(other_arch))
    (tmp_path / 'base_nameerror.py').write_text('x = undefined_name\n')
    name_error = tmp_path / 'name_error.py'
    name_error.write_text("_base_ = ['./base_nameerror.py']\n")
    missing_base = tmp_path / 'missing_base.py'
    missing_base.write_text("_base_ = ['./nope.py']\n")
    bad_import = tmp_path / 'bad_import.py'
    bad_import.write_text('import not_a_module_mmpl_test\n')
    (tmp_path / 'base_syntax.py').write_text('model = dict(\n')
    syntax_base = tmp_path / 'syntax_base.py'
    syntax_base.write_text("_base_ = ['./base_syntax.py']\n")
    no_model = tmp_path / 'no_model.py'
    no_model.write_text('x = 1\n')
    (tmp_path / 'my_tables').mkdir()
    (tmp_path / 'my_tables' / 'b2n_table.md').write_text('my table')
    (tmp_path / 'runs' / 'seed1').mkdir(parents=True)
    (tmp_path / 'runs' / 'seed1' / 'results.json').write_text('{"metr')
    return dict(name_error=str(name_error), missing_base=str(missing_base),
                bad_import=str(bad_import), syntax_base=str(syntax_base),
                no_model=str(no_model), my_tables=str(tmp_path / 'my_tables'),
                other_arch=str(other_arch), runs=str(tmp_path / 'runs'),
                out=str(tmp_path / 'report'), broken=str(broken),
                garbage=str(garbage),
                truncated=str(truncated), a_file=str(a_file),
                a_json=str(tmp_path / 'mine.json'),
                empty_run=str(tmp_path / 'empty_run'),
                work=str(tmp_path / 'w'))


# (tool, argv with {placeholders}, a part of the expected line)
CASES = [
    ('train', ['{broken}'], 'syntax error in config'),
    ('train', ['nowhere/cfg.py'], "config not found: 'nowhere/cfg.py'"),
    # a config that fails when run names the file (and line) that failed
    ('train', ['{name_error}'], "base_nameerror.py:1 fails when run: "
     "NameError: name 'undefined_name' is not defined"),
    ('train', ['{missing_base}'], 'nope.py, which does not exist. Fix its '
     '_base_ list'),
    ('train', ['{bad_import}'], "fails when run: ModuleNotFoundError"),
    ('train', ['{syntax_base}'], 'syntax error in config'),
    ('test', ['{syntax_base}', '{garbage}'], 'base_syntax.py:1'),
    ('train', ['{no_model}'], 'defines no model'),
    ('train', [COOP, '--cfg-options', 'model.text_prompt.n_ctxx=4'],
     'Did you mean model.text_prompt.n_ctx?'),
    ('train', [COOP, '--cfg-options', 'train_cfg.max_epoch=4'],
     'Did you mean train_cfg.max_epochs?'),
    ('train', [COOP, '--cfg-options', 'model.text_promt.n_ctx=4'],
     'Did you mean model.text_prompt?'),
    ('train', [COOP, '--cfg-options', 'n_ctx'],
     "--cfg-options takes KEY=VALUE items (e.g. train_cfg.max_epochs=5), "
     "got 'n_ctx'"),
    ('train', [COOP, '--seed', '-1'], '--seed must be an integer >= 0'),
    ('train', [COOP, '--seed', 'one'], "argument --seed: invalid int value"),
    ('train', [COOP, '--cfg-options', 'randomness.seed=abc'],
     "randomness.seed must be an integer >= 0, got 'abc'"),
    ('smoke', [COOP, '--work-dir', '{a_file}'], 'is a file'),
    ('train', [COOP, '--cfg-options', 'train_dataloader.batch_size=0'],
     'train_dataloader.batch_size must be an integer >= 1, got 0'),
    ('train', [COOP, '--cfg-options', 'train_cfg.max_epochs=abc'],
     "train_cfg.max_epochs must be an integer >= 1, got 'abc'"),
    ('train', [COOP, '--cfg-options', 'train_cfg.max_epochs=0'],
     'train_cfg.max_epochs must be an integer >= 1, got 0'),
    ('train', [COOP, '--cfg-options', 'optim_wrapper.optimizer.lr=fast'],
     "optim_wrapper.optimizer.lr must be a number > 0, got 'fast'"),
    ('train', [COOP, '--cfg-options', 'val_dataloader.new.num_workers=-1'],
     'val_dataloader.new.num_workers must be an integer >= 0'),
    ('train', [COOP, '--cfg-options', 'train_dataloader.dataset.dataset.'
               'dataset.pipeline.1.scale=64'],
     '.pipeline makes 64 px images (RandomResizedCrop scale=64) and the '
     'CLIP ViT-B-16 takes 224 px'),
    ('train', [COOP, '--work-dir', '{a_file}'], 'is a file'),
    ('train', [COOP, '--work-dir', '{a_file}/sub'], 'is not writable'),
    ('train', [COOP, '--work-dir', '{empty_run}', '--resume'],
     'nothing to resume in'),
    ('train', [COOP, '--resume', '{work}/epoch_3.pth'],
     'resume checkpoint not found'),
    ('train', [COOP, '--resume', '{garbage}'],
     'cannot read resume checkpoint'),
    ('train', [COOP, '--resume', '{truncated}'],
     'cannot read resume checkpoint'),
    ('train', [COOP, '--launcher', 'gpu'], "argument --launcher: invalid "
     "choice: 'gpu'"),
    ('train', [COOP, '--cfg-options', f'model.clip.arch={TINY_ARCH}',
               'model.clip.pretrained={other_arch}'],
     "do not fit arch 'mmpl-tiny-vit': visual.conv1.weight is (8, 3, 4, 4) "
     'in the file'),
    ('train', [EXAMPLE, '--cfg-options'] + TINY,
     "CustomDataset data not found: 'data/custom/train'"),
    ('test', [COOP, '{garbage}'], 'cannot read checkpoint'),
    ('test', [COOP, '{work}/none.pth'], 'checkpoint not found'),
    ('test', [COOP, '--out', '{a_file}'], "exists. Choose another file"),
    # outputs are checked before the work: results are never lost after it
    ('test', [COOP, '--out', '{work}/missing/r.json'],
     'does not exist. Create it first'),
    ('test', [COOP, '--out', '{a_file}/r.json'], 'is a file, not a folder'),
    ('infer', ['{a_file}', '{garbage}', '--out', '{work}/missing/r.json'],
     'does not exist. Create it first'),
    ('infer', ['{a_file}', '{garbage}', '--template', 'a {{}} of {{}}'],
     'must hold exactly one {} for the class name'),
    ('infer', ['{a_file}', '{garbage}', '--template', 'a photo of a'],
     'must hold exactly one {} for the class name'),
    ('infer', ['{a_file}', '{garbage}', '--out', '{a_json}'],
     'exists. Choose another file'),
    # the converter reads its config as the tools do, before the source
    ('convert', ['nowhere', '{broken}', '{work}.pth'],
     'syntax error in config'),
    ('convert', ['nowhere', MAPLE, '{work}.pth', '--cfg-options',
                 'model.prompt.n_ctxx=2'],
     "model (PromptCLIPClassifier) has no 'prompt'"),
    ('convert', ['nowhere', MAPLE, '{work}/missing/o.pth'],
     'does not exist. Create it first'),
    ('convert', ['nowhere', MAPLE, '{a_file}'], 'exists'),
    ('profile', ['nowhere/cfg.py'], 'config not found'),
    ('profile', [COOP, '--batch-size', '0'],
     '--batch-size must be an integer >= 1, got 0'),
    # a user's file with a report's name is refused before any work
    ('demo', ['--work-dir', '{my_tables}'], 'was not written by mmpl'),
    ('smoke', ['nowhere/cfg.py'], 'config not found'),
    ('report', ['{runs}', '--out-dir', '{out}'], 'results.json is not valid '
     'JSON'),
    ('smoke', [COOP, '--cfg-options', 'model.clip.pretraind=x'],
     'Did you mean model.clip.pretrained?'),
]


def run_tool(tool: str, argv, capsys) -> tuple:
    """(exit status, the ``mmpl: error:`` lines of stderr) of a tool's
    ``main`` called in process."""
    try:
        code = TOOLS[tool].main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines()
             if line.startswith('mmpl: error: ')]
    assert 'Traceback' not in err, err
    return code, lines


@pytest.mark.parametrize('tool,argv,expected', CASES,
                         ids=[f'{c[0]}-{i}' for i, c in enumerate(CASES)])
def test_bad_input_is_one_actionable_line(tool, argv, expected, tmp_path,
                                          capsys):
    files = _files(tmp_path)
    argv = [a.format(**files) for a in argv]
    if '--work-dir' not in argv and tool in ('train', 'test'):
        argv += ['--work-dir', files['work']]
    before = {p: open(p, 'rb').read() for p in files.values()
              if osp.isfile(p)}
    code, lines = run_tool(tool, argv, capsys)
    assert code == 2
    assert len(lines) == 1 and expected in lines[0], lines
    # every line says what is wrong, then what to do
    assert lines[0].rstrip('.?').count('. ') >= 1, lines[0]
    for path, data in before.items():  # nothing the user wrote is changed
        assert open(path, 'rb').read() == data


def test_cfg_options_keep_spaces_of_a_string():
    args = train_tool.parse_args(
        [COOP, '--cfg-options', 'model.text_prompt.ctx_init=a photo of a',
         'model.text_prompt.n_ctx=4', 'a.b=[1, 2]', "c='x y'"])
    assert args.cfg_options == {'model.text_prompt.ctx_init': 'a photo of a',
                                'model.text_prompt.n_ctx': 4,
                                'a.b': [1, 2], 'c': 'x y'}


def test_a_constructor_option_the_config_leaves_default_is_accepted():
    from mmpl.apis import load_config
    cfg = load_config(COOP, {'model.text_prompt.class_specific': True,
                             'model.text_prompt.num_classes': 5,
                             'my_own_key': 1})
    assert cfg.model.text_prompt.class_specific and cfg.my_own_key == 1


def test_mmpl_debug_shows_the_traceback(monkeypatch, tmp_path):
    from mmpl.utils.errors import MissingFileError
    monkeypatch.setenv('MMPL_DEBUG', '1')
    with pytest.raises(MissingFileError):
        train_tool.main(['nowhere/cfg.py', '--work-dir', str(tmp_path)])


@pytest.fixture(scope='module')
def offline_test_cfg(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('offline_test')
    return lambda: offline_config(COOP, work_dir)


def test_test_refuses_a_checkpoint_without_the_models_parameters(
        offline_test_cfg, tmp_path, tiny_clip):
    from mmpl import apis
    from mmpl.utils.errors import CheckpointError
    weights = tmp_path / 'clip.pt'  # a CLIP weight file given as checkpoint
    torch.save(tiny_clip.model.state_dict(), str(weights))
    with pytest.raises(CheckpointError, match="holds none of this model's "
                       'trainable parameters .missing: text_prompt.ctx'):
        apis.test(offline_test_cfg(), str(weights))


def test_test_refuses_a_checkpoint_of_another_method(offline_test_cfg,
                                                     tmp_path):
    from mmpl import apis
    from mmpl.utils.errors import CheckpointError
    ckpt = tmp_path / 'cocoop.pth'
    torch.save({'meta': {'mmpl': {'text_prompt': 'CoCoOp'}},
                'state_dict': {'text_prompt.ctx': torch.zeros(4, 64)}},
               str(ckpt))
    with pytest.raises(CheckpointError,
                       match='trained with CoCoOp and the config builds CoOp'):
        apis.test(offline_test_cfg(), str(ckpt))


def test_data_preprocessor_without_type_is_merged_onto_clips(tiny_clip):
    from mmpl.clip import CLIP_MEAN
    from mmpl.models.classifier import clip_data_preprocessor
    from helpers import build_classifier
    merged = clip_data_preprocessor(dict(num_classes=5, to_rgb=True))
    assert merged['type'] == 'mmpretrain.ClsDataPreprocessor'
    assert merged['mean'] == CLIP_MEAN and merged['num_classes'] == 5
    model = build_classifier(dict(type='CoOp', n_ctx=2), ['a', 'b'],
                             data_preprocessor=dict(num_classes=2))
    mean = model.data_preprocessor.mean.flatten().tolist()
    assert mean == pytest.approx(list(CLIP_MEAN))


def test_resume_finds_the_checkpoint_of_a_moved_work_dir(tmp_path):
    from mmpl.apis.preflight import find_resume_checkpoint
    moved = tmp_path / 'moved'
    moved.mkdir()
    (moved / 'epoch_1.pth').write_bytes(b'')
    (moved / 'epoch_2.pth').write_bytes(b'')
    # mmengine's marker keeps the absolute path of the old place
    (moved / 'last_checkpoint').write_text('/old/place/run/epoch_2.pth')
    assert find_resume_checkpoint(str(moved)) == str(moved / 'epoch_2.pth')
    (moved / 'last_checkpoint').unlink()
    (moved / 'iter_7.pth').write_bytes(b'')
    assert find_resume_checkpoint(str(moved)) == str(moved / 'iter_7.pth')


def test_smoke_rewrite_fits_any_input_size(tmp_path):
    """A consistent 336 px config (ViT-L-14-336) runs offline on the
    224 px tiny CLIP: its pipelines are resized with it."""
    from mmpl.apis.preflight import check_input_size
    from mmpl.utils.config_tools import iter_dataset_paths
    sizes = {'model.clip.arch': 'ViT-L-14-336'}
    sizes['train_dataloader.dataset.dataset.dataset.pipeline.1.scale'] = 336
    for stage in ('val', 'test'):
        for split in ('base', 'new'):
            key = f'{stage}_dataloader.{split}.dataset.dataset.pipeline'
            sizes.update({f'{key}.1.scale': 336, f'{key}.2.crop_size': 336})
    cfg = offline_config(COOP, tmp_path, sizes)
    check_input_size(cfg)  # against mmpl-tiny-vit now
    pipelines = [n['pipeline'] for _, n in iter_dataset_paths(cfg)
                 if 'pipeline' in n]
    assert pipelines and all(
        t.get('scale', 224) == 224 and t.get('crop_size', 224) == 224
        for p in pipelines for t in p)


class _Data:
    """A dataset of ``counts[c]`` images of class ``c`` (no files)."""

    def __init__(self, counts, names=None):
        self.labels = [c for c, n in enumerate(counts) for _ in range(n)]
        self.metainfo = dict(classes=tuple(
            names or [f'class{c}' for c in range(len(counts))]))
        self.data_root = '/data/mine'

    def __len__(self):
        return len(self.labels)

    def get_data_info(self, idx):
        return dict(img_path=f'/data/mine/{idx}.jpg',
                    gt_label=self.labels[idx])


def test_fewshot_warns_about_classes_with_too_few_images(monkeypatch):
    import mmengine.logging

    from mmpl.datasets import FewShotDataset
    logged = []
    monkeypatch.setattr(mmengine.logging, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    data = FewShotDataset(_Data([20, 3, 16], ['cat', 'dog', 'owl']),
                          num_shots=16)
    assert len(data) == 16 + 3 + 16
    assert logged == ['FewShotDataset: 1 of 3 classes have fewer than '
                      "num_shots=16 images (fewest: 'dog' with 3); they keep "
                      'all their images, so the run is not 16-shot for them']


def test_an_empty_class_is_an_error():
    from mmpl.datasets import FewShotDataset
    from mmpl.utils.errors import DataError
    with pytest.raises(DataError, match="class 'dog' of _Data .*/data/mine.* "
                       'has no images .*empty class folder'):
        FewShotDataset(_Data([4, 0, 4], ['cat', 'dog', 'owl']), num_shots=2)


def test_base_new_of_one_class_says_so():
    from mmpl.datasets import BaseNewDataset
    from mmpl.utils.errors import DataError
    with pytest.raises(DataError, match=r"has 1 class\(es\) \['cat'\]; a "
                       'base/new split needs at least 2'):
        BaseNewDataset(_Data([4], ['cat']), subset='new')


def test_the_console_shows_progress_and_results():
    """The runner's console leaves out the environment report, config dump
    and hook table (they stay in the log file). (That ``import mmpl``
    prints no warning: the real-process test of tests/test_engine.py.)"""
    import logging

    from mmpl.utils.quiet import ConsoleFilter

    def shown(msg):
        return ConsoleFilter().filter(logging.LogRecord(
            'mmengine', logging.INFO, __file__, 1, msg, None, None))
    assert not shown('\n' + '-' * 60 + '\nSystem environment:\n  x: 1')
    assert not shown('Config:\nmodel = dict(...)')
    assert not shown('Hooks will be executed in the following order:\n..')
    assert shown('Epoch(train) [1][5/5]  lr: 1.0000e-05  loss: 1.6948')
    assert shown('Epoch(val) [1][4/4]    base/accuracy/top1: 20.0000')


def test_unreachable_weights_fail_at_once(monkeypatch):
    """pretrained='openai' without network: one line at once, not after a
    minute of download retries (the host is probed first)."""
    import socket

    from mmpl.clip import builder
    from mmpl.utils.errors import CLIPBuildError

    def no_network(*args, **kwargs):
        raise OSError('Network is unreachable')
    monkeypatch.setattr(socket, 'create_connection', no_network)
    monkeypatch.setenv('HF_HUB_CACHE', '/nonexistent-cache')
    with pytest.raises(CLIPBuildError, match=r'Cannot load ViT-B-16/openai '
                       r'weights offline \(huggingface.co does not answer\)'):
        builder._check_reachable('ViT-B-16', 'openai', '/nonexistent-cache')


def test_test_refuses_a_checkpoint_of_another_class_count(offline_test_cfg,
                                                          tmp_path):
    from mmpl import apis
    from mmpl.utils.errors import CheckpointError
    ckpt = tmp_path / 'three.pth'
    torch.save({'meta': {'mmpl': {'text_prompt': 'CoOp',
                                  'classes': ['a', 'b', 'c']}},
                'state_dict': {'text_prompt.ctx': torch.zeros(16, 64)}},
               str(ckpt))
    with pytest.raises(CheckpointError, match=r'trained on 3 classes \(a, b, '
                       r"c, ...\) and this config's base split has 5"):
        apis.test(offline_test_cfg(), str(ckpt))


@pytest.mark.parametrize('options, warned', [
    ([], False),  # the shipped configs: SeededSampler, mmpl datasets
    (['train_dataloader.sampler.type=DefaultSampler'], True),
    (['train_dataloader.sampler.type=DefaultSampler',
      'train_dataloader.num_workers=0'], False)])
def test_resume_says_when_it_cannot_be_exact(options, warned, tmp_path,
                                             capsys):
    """A resumed run with dataloader workers replays the uninterrupted run's
    augmentations only with SeededSampler around an mmpl dataset; anything
    else resumes, with one warning line saying so."""
    ckpt = tmp_path / 'epoch_2.pth'
    torch.save({'state_dict': {}, 'meta': {}}, str(ckpt))
    code = train_tool.main([COOP, '--work-dir', str(tmp_path / 'w'),
                            '--resume', str(ckpt), '--check-only',
                            '--cfg-options'] + TINY + options)
    err = capsys.readouterr().err
    assert code == 0
    lines = [x for x in err.splitlines() if x.startswith('mmpl: warning: ')]
    assert len(lines) == int(warned), err
    if warned:
        assert 'DefaultSampler' in lines[0] and 'SeededSampler' in lines[0]


def test_a_config_path_object_is_read():
    """The API takes a pathlib.Path where it takes a config path."""
    import pathlib

    from mmpl.utils.config_file import read_config
    cfg = read_config(pathlib.Path(COOP))
    assert cfg.model.text_prompt.type == 'CoOp'
