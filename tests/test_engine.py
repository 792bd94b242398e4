"""Training and evaluation through mmengine's Runner, end to end, offline:
metric names, class switching, the schedule, checkpoints (small, plain data,
exact resume), determinism and the tools' one-line errors."""
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmpl.losses import BaseExtraLoss
from mmpl.structures import Needs
from mmpl.testing import TINY_ARCH
from helpers import load_tool, offline_config, text_plans

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
COOP = osp.join(ROOT, 'configs/coop/coop_vitb16_b2n_eurosat.py')
CSC_OPTIONS = {'model.text_prompt.class_specific': True,
               'model.text_prompt.num_classes': 5}



train_tool = load_tool('tools/train.py')
test_tool = load_tool('tools/test.py')


def _runner(work_dir, config=COOP, epochs=2, options=None):
    """A Runner on the miniature with the tiny CLIP, checkpoints kept."""
    from mmengine.runner import Runner
    cfg = offline_config(config, work_dir, options)
    cfg.train_cfg.max_epochs = epochs
    cfg.default_hooks.checkpoint.max_keep_ckpts = 10
    return Runner.from_cfg(cfg)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Two epochs of CoOp; returns (work_dir, val metrics, runner)."""
    work_dir = tmp_path_factory.mktemp('run_a')
    runner = _runner(work_dir)
    runner.train()
    return work_dir, runner.val_loop.run(), runner


def test_harmonic_mean_rule():
    from mmpl.evaluation import harmonic_mean
    assert harmonic_mean(80.0, 60.0) == pytest.approx(2 * 80 * 60 / 140)
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(50.0, 50.0) == pytest.approx(50.0)


def test_b2n_metric_names_and_hm(trained):
    _, metrics, _ = trained
    assert set(metrics) == {'base/accuracy/top1', 'new/accuracy/top1',
                            'harmonic_mean'}
    b, n = metrics['base/accuracy/top1'], metrics['new/accuracy/top1']
    assert metrics['harmonic_mean'] == pytest.approx(
        0 if b + n == 0 else 2 * b * n / (b + n))


def test_eval_switches_classes_and_restores_training_classes(trained):
    _, _, runner = trained
    model = runner.model
    base = runner.val_loop._splits.dataloaders['base'].dataset
    new = runner.val_loop._splits.dataloaders['new'].dataset
    train_classes = tuple(runner.train_dataloader.dataset.metainfo['classes'])
    assert tuple(base.metainfo['classes']) == train_classes
    assert not set(new.metainfo['classes']) & set(train_classes)
    seen = []
    original = model.set_classes

    def spy(classnames, template=None):
        seen.append(tuple(classnames))
        original(classnames, template)

    model.set_classes = spy
    try:
        runner.val_loop.run()
    finally:
        del model.set_classes
    assert seen[:2] == [train_classes, tuple(new.metainfo['classes'])]
    assert model.classnames == train_classes  # restored after evaluation
    assert len(new) == 5 * 3 and len(base) == 5 * 3  # every test image once


def test_eval_restores_the_training_template(trained):
    """The loops switch the class names and template per split and give
    the model back the ones it had (read through its public
    ``dataset_template``)."""
    _, _, runner = trained
    model = runner.model
    classes, template = model.classnames, model.dataset_template
    model.set_classes(classes, 'a drawing of a {}.')
    try:
        runner.val_loop.run()
        assert (model.classnames, model.dataset_template) == (
            classes, 'a drawing of a {}.')
    finally:
        model.set_classes(classes, template)


def test_loops_read_no_private_attribute_of_runner_or_model():
    """mmpl/engine/loops.py uses the runner's and the model's public API
    (its own ``self._...`` aside)."""
    import ast
    path = osp.join(ROOT, 'mmpl', 'engine', 'loops.py')
    private = [
        f'{ast.unparse(node.value)}.{node.attr}'
        for node in ast.walk(ast.parse(open(path).read()))
        if isinstance(node, ast.Attribute) and node.attr.startswith('_')
        and not node.attr.startswith('__')
        and not (isinstance(node.value, ast.Name) and node.value.id == 'self')
    ]
    assert private == []


def test_evaluation_encodes_text_once_per_class_set(trained):
    """A real evaluation (base and new, several batches each): CoOp's text
    features are computed once per class set, not per batch."""
    _, _, runner = trained
    loaders = runner.val_loop._splits.dataloaders
    assert all(len(loader) > 1 for loader in loaders.values())
    with text_plans(runner.model) as plans:
        runner.val_loop.run()
    assert len(plans) == 2  # base, new
    with text_plans(runner.model) as plans:
        runner.val_loop.run()  # a new evaluation computes them again
    assert len(plans) == 2


def test_lr_schedule_matches_coop_benchmark():
    from mmengine.optim.scheduler import ConstantLR, CosineAnnealingLR

    from mmpl.engine import ConstantWarmupCosineLR
    epochs, lr = 8, 2e-3

    def lrs(make):
        param = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([param], lr=lr)
        schedulers, out = make(opt), []
        for _ in range(epochs):
            out.append(opt.param_groups[0]['lr'])
            opt.step()
            for s in schedulers:
                s.step()
        return out

    ours = lrs(lambda o: [ConstantWarmupCosineLR(o, end=epochs)])
    two_step = lrs(lambda o: [
        ConstantLR(o, factor=1e-5 / lr, begin=0, end=2),
        CosineAnnealingLR(o, T_max=epochs, begin=1, end=epochs)
    ])
    dassl = [1e-5] + [lr * (1 + math.cos(math.pi * (e - 1) / epochs)) / 2
                      for e in range(1, epochs)]
    assert ours == pytest.approx(dassl)
    assert two_step == pytest.approx(dassl)


def test_checkpoint_is_small_plain_and_carries_meta(trained):
    work_dir, _, runner = trained
    path = osp.join(str(work_dir), 'epoch_2.pth')
    # A fresh interpreter without mmpl: no allow-listed globals at all.
    code = ('import torch,sys; c=torch.load(sys.argv[1], weights_only=True); '
            'print(sorted(c["state_dict"]))')
    out = subprocess.run([sys.executable, '-c', code, path],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['text_prompt.ctx']"
    ckpt = torch.load(path, weights_only=True)
    meta = ckpt['meta']['mmpl']
    assert meta['arch'] == 'mmpl-tiny-vit'
    assert meta['text_prompt'] == 'CoOp'
    assert meta['classes'] == list(
        runner.train_dataloader.dataset.metainfo['classes'])
    assert osp.getsize(path) < 100_000


def test_vitb16_coop_checkpoint_is_under_1mb(tmp_path):
    """The real backbone (random weights): the checkpoint still holds only
    the prompts, optimizer state and meta."""
    from mmengine.runner import Runner

    from mmpl.utils import replace_clip
    cfg = offline_config(COOP, tmp_path)
    replace_clip(cfg, dict(arch='ViT-B-16', pretrained=None))
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg = dict(by_epoch=False, max_iters=1, val_interval=10)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint.update(by_epoch=False, interval=1)
    Runner.from_cfg(cfg).train()
    path = tmp_path / 'iter_1.pth'
    ckpt = torch.load(path, weights_only=True)
    assert ckpt['meta']['mmpl']['arch'] == 'ViT-B-16'
    assert ckpt['state_dict']['text_prompt.ctx'].shape == (16, 512)
    assert osp.getsize(path) < 1 << 20


def test_resume_reaches_identical_result_and_training_is_deterministic(
        trained, tmp_path):
    work_dir, metrics, _ = trained
    final = torch.load(osp.join(str(work_dir), 'epoch_2.pth'),
                       weights_only=True)['state_dict']['text_prompt.ctx']
    # Same config + seed from scratch: identical parameters.
    again = _runner(tmp_path / 'again')
    again.train()
    ctx = torch.load(str(tmp_path / 'again' / 'epoch_2.pth'),
                     weights_only=True)['state_dict']['text_prompt.ctx']
    assert torch.equal(ctx, final)
    # Interrupted after epoch 1, resumed: identical parameters and metrics.
    resumed = _runner(tmp_path / 'resumed', options=dict(
        resume=True, load_from=osp.join(str(work_dir), 'epoch_1.pth')))
    resumed.train()
    ctx = torch.load(str(tmp_path / 'resumed' / 'epoch_2.pth'),
                     weights_only=True)['state_dict']['text_prompt.ctx']
    assert torch.equal(ctx, final)
    assert resumed.val_loop.run() == metrics


def test_tools_test_reproduces_training_metrics(trained, tmp_path, capsys):
    work_dir, metrics, runner = trained
    out = tmp_path / 'metrics.json'
    cfg_path = tmp_path / 'cfg.py'
    Config(runner.cfg.to_dict()).dump(str(cfg_path))
    code = test_tool.main([str(cfg_path), osp.join(str(work_dir),
                                                    'epoch_2.pth'),
                           '--work-dir', str(tmp_path), '--out', str(out)])
    assert code == 0
    import json
    assert json.loads(out.read_text()) == pytest.approx(metrics)


def _error_line(capsys) -> str:
    """The tool's error line (mmengine's loggers may add their own output to
    the captured stream in-process; the subprocess test checks the whole
    stderr)."""
    err = capsys.readouterr().err.strip().splitlines()
    lines = [line for line in err if line.startswith('mmpl: error: ')]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.heavy
def test_train_missing_data_root_is_one_line_in_a_real_process(tmp_path):
    missing = tmp_path / 'nowhere' / 'eurosat'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools/train.py'), COOP,
         '--work-dir', str(tmp_path / 'w'), '--data-root', str(missing),
         '--cfg-options', f'model.clip.arch={TINY_ARCH}',
         'model.clip.pretrained=None'], capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=ROOT))  # this checkout's mmpl
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines()
              if line.startswith('mmpl: error: ')]
    assert len(errors) == 1 and str(missing) in errors[0], proc.stderr
    # nothing else on stderr: the known-harmless third-party warnings of
    # `import mmpl` are filtered (mmpl.utils.quiet)
    assert proc.stderr.strip() == errors[0], proc.stderr


@pytest.mark.heavy
def test_train_missing_data_root_is_one_line(tmp_path, capsys):
    missing = tmp_path / 'nowhere' / 'eurosat'
    code = train_tool.main([COOP, '--work-dir', str(tmp_path / 'w'),
                            '--data-root', str(missing), '--cfg-options',
                            f'model.clip.arch={TINY_ARCH}',
                            'model.clip.pretrained=None'])
    assert code == 2
    assert str(missing) in _error_line(capsys)


def test_train_unknown_arch_and_missing_weights(tmp_path, capsys):
    code = train_tool.main([COOP, '--work-dir', str(tmp_path / 'w'),
                            '--cfg-options', 'model.clip.arch=ViT-B-61'])
    assert code == 2
    assert 'Unknown CLIP architecture' in _error_line(capsys)
    code = train_tool.main([COOP, '--work-dir', str(tmp_path / 'w'),
                            '--cfg-options',
                            f'model.clip.pretrained={tmp_path}/ViT-B-16.pt'])
    assert code == 2
    line = _error_line(capsys)
    assert 'CLIP weights not found' in line and 'ViT-B-16.pt' in line


def test_train_unknown_module_name(tmp_path, capsys):
    code = train_tool.main([COOP, '--work-dir', str(tmp_path / 'w'),
                            '--cfg-options', 'model.text_prompt.type=CoOOp',
                            f'model.clip.arch={TINY_ARCH}',
                            'model.clip.pretrained=None'])
    assert code == 2
    assert 'CoOOp' in _error_line(capsys)


def test_checkpoint_class_count_mismatch_names_both(tmp_path, capsys):
    runner = _runner(tmp_path / 'csc', epochs=1, options=CSC_OPTIONS)
    runner.train()
    ckpt = str(tmp_path / 'csc' / 'epoch_1.pth')
    options = dict(CSC_OPTIONS)
    options['model.text_prompt.num_classes'] = 3
    other = _runner(tmp_path / 'csc3', epochs=1, options=options)
    with pytest.raises(ValueError, match=r'5 classes.*\(3, 16, 64\)'):
        other.load_checkpoint(ckpt)


class _NaNAfter(BaseExtraLoss):
    """An extra loss that is 0 for ``good`` calls, then NaN."""
    needs = Needs()

    def __init__(self, good: int = 5):
        super().__init__('loss_probe')
        self.good, self.calls = good, 0

    def forward(self, outputs, labels):
        self.calls += 1
        value = 0.0 if self.calls <= self.good else float('nan')
        return outputs.logits.sum() * 0 + value


def test_nan_loss_stops_with_iteration_and_keeps_good_checkpoint(tmp_path):
    from mmpretrain.registry import MODELS
    MODELS.register_module(module=_NaNAfter, force=True)
    # the miniature has 5 base classes x 4 shots = 20 images: 5 iters/epoch
    runner = _runner(tmp_path / 'nan', epochs=3, options={
        'model.extra_losses': [dict(type='_NaNAfter', good=6)]})
    with pytest.raises(RuntimeError) as info:
        runner.train()
    msg = str(info.value)
    assert 'non-finite loss at iteration 7 (epoch 2)' in msg
    good = osp.join(str(tmp_path / 'nan'), 'epoch_1.pth')
    assert f'Last good checkpoint: {good}' in msg
    assert not osp.exists(osp.join(str(tmp_path / 'nan'), 'epoch_2.pth'))
    ctx = torch.load(good, weights_only=True)['state_dict']['text_prompt.ctx']
    assert torch.isfinite(ctx).all()


def test_resume_is_exact_with_persistent_workers(tmp_path):
    """2 persistent dataloader workers: training stopped after epoch 1 and
    resumed reaches the uninterrupted run's parameters bit for bit (the
    workers restart on resume; the augmentation seeds depend on seed,
    epoch and sample only; with mmengine's DefaultSampler this test
    fails)."""
    def run(name, **options):
        from mmengine.runner import Runner
        cfg = offline_config(COOP, tmp_path / name, options)
        cfg.train_cfg.max_epochs = 2
        cfg.default_hooks.checkpoint.max_keep_ckpts = 10
        cfg.train_dataloader.update(num_workers=2, persistent_workers=True)
        Runner.from_cfg(cfg).train()
        return torch.load(str(tmp_path / name / 'epoch_2.pth'),
                          weights_only=True)['state_dict']['text_prompt.ctx']

    full = run('full')
    resumed = run('resumed', resume=True,
                  load_from=str(tmp_path / 'full' / 'epoch_1.pth'))
    assert torch.equal(resumed, full)
