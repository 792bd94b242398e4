"""PromptSRC's Gaussian prompt aggregation as an mmengine hook: after the
last epoch the prompts are the Gaussian-weighted mean of every epoch's
prompts (weights pinned by hand), in the final checkpoint and evaluation,
and a resumed run aggregates as an uninterrupted one."""
import math
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook

from mmpl.engine.hooks import GaussianPromptAggregationHook, gaussian_weight
from mmpl.utils.errors import ConfigError
from helpers import ROOT, offline_config

COOP = osp.join(ROOT, 'configs/coop/coop_vitb16_b2n_eurosat.py')
GPA = dict(type='GaussianPromptAggregationHook', mean=3, std=1.0)


class RecordPrompts(Hook):
    """The context after each epoch, before GPA rewrites it."""
    priority = 'HIGH'

    def __init__(self):
        self.epochs = []

    def after_train_epoch(self, runner):
        self.epochs.append(
            runner.model.text_prompt.ctx.detach().clone())


def _runner(work_dir, options=None, gpa=True):
    from mmengine.runner import Runner
    cfg = offline_config(COOP, work_dir, options, name=osp.basename(
        str(work_dir)))
    cfg.train_cfg.max_epochs = 3
    cfg.default_hooks.checkpoint.max_keep_ckpts = 10
    if gpa:
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [GPA]
    runner = Runner.from_cfg(cfg)
    recorder = RecordPrompts()
    runner.register_hook(recorder)
    return runner, recorder


def _ctx(path):
    return torch.load(path, weights_only=True)['state_dict'][
        'text_prompt.ctx']


def test_gaussian_weight_is_the_normal_density():
    assert gaussian_weight(15, 15, 1) == pytest.approx(
        1 / math.sqrt(2 * math.pi))
    assert gaussian_weight(13, 15, 2) == pytest.approx(
        math.exp(-0.5) / (2 * math.sqrt(2 * math.pi)))
    with pytest.raises(ConfigError, match='std'):
        GaussianPromptAggregationHook(std=0)


@pytest.fixture(scope='module')
def aggregated(tmp_path_factory):
    work = tmp_path_factory.mktemp('gpa')
    runner, recorder = _runner(work)
    runner.train()
    return work, runner, recorder.epochs


def test_final_prompts_are_the_gaussian_mean_of_the_epochs(aggregated):
    work, runner, epochs = aggregated
    assert len(epochs) == 3
    # w_e = N(e; 3, 1) for e = 1, 2, 3 (epochs from 1): e^-2, e^-1/2, 1
    w = [math.exp(-2), math.exp(-0.5), 1.0]
    expect = sum(wi * p for wi, p in zip(w, epochs)) / sum(w)
    final = _ctx(osp.join(str(work), 'epoch_3.pth'))
    torch.testing.assert_close(final, expect, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(runner.model.text_prompt.ctx.detach(), expect,
                               atol=1e-6, rtol=1e-5)
    assert (final - epochs[-1]).abs().max() > 1e-6  # not the last epoch
    # earlier checkpoints keep the epoch's own prompts
    torch.testing.assert_close(_ctx(osp.join(str(work), 'epoch_2.pth')),
                               epochs[1], atol=0, rtol=0)


def test_resumed_run_aggregates_as_the_uninterrupted_one(aggregated,
                                                         tmp_path):
    work, _, _ = aggregated
    resumed, _ = _runner(tmp_path / 'resumed', options=dict(
        resume=True, load_from=osp.join(str(work), 'epoch_2.pth')))
    resumed.train()
    torch.testing.assert_close(_ctx(str(tmp_path / 'resumed' / 'epoch_3.pth')),
                               _ctx(osp.join(str(work), 'epoch_3.pth')),
                               atol=1e-7, rtol=0)


def test_far_mean_keeps_the_nearest_epochs_not_zeros():
    """Every weight tiny (mean 17 sigma past a 3-epoch run): the aggregate
    is still the weighted mean (here ~ the last epoch), not zero."""
    from types import SimpleNamespace
    model = torch.nn.Linear(2, 2)
    hook = GaussianPromptAggregationHook(mean=20, std=1.0)
    runner = SimpleNamespace(model=model, max_epochs=3, epoch=0)
    for epoch in range(3):
        with torch.no_grad():
            model.weight.fill_(float(epoch + 1))
        runner.epoch = epoch
        hook.after_train_epoch(runner)
    w = [math.exp(-0.5 * (e - 20) ** 2) for e in (1, 2, 3)]
    expect = sum(wi * (i + 1) for i, wi in enumerate(w)) / sum(w)
    torch.testing.assert_close(model.weight.detach(),
                               torch.full((2, 2), expect), atol=1e-6, rtol=0)
    assert expect > 2.99
