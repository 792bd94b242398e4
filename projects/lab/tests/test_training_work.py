"""What one training step does not do (issue 21): the work that profiles of
CoOp, KgCoOp and FTP steps showed, or that would be easy to reintroduce.

* the shared ``[SOS] ctx`` prefix's keys and values reach the class
  sequences as an expand, not a gather per block (whose backward is a
  scatter-add into a zero tensor);
* the prefixes and every length group of class positions run each text
  block's projections as one matmul over all their rows (packed), not one
  per group;
* the frozen image tower of a text-only method (CoOp, KgCoOp) runs without
  autograd (nothing upstream of it trains);
* KgCoOp's anchors (the zero-shot text features) are encoded once across
  training steps."""
import os.path as osp

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mmpl.clip.prefix_attention import prefix_per_sequence, sequence_repeats
from mmpl.testing import TINY_ARCH
from mmpl_lab import speed as bm
from helpers import ROOT, randomize

TINY = TINY_ARCH
CONFIGS = {
    'coop': 'configs/coop/coop_vitb16_b2n_eurosat.py',
    'kgcoop': 'configs/coop/kgcoop_vitb16_b2n_eurosat.py',
    'cocoop': 'configs/cocoop/cocoop_vitb16_b2n_eurosat.py',
    'ftp': 'configs/mpl/ftp_vitb16_b2n_eurosat.py',
}


def _model(family, num_classes=7):
    torch.manual_seed(0)
    model = bm.build_benchmark_model(osp.join(ROOT, CONFIGS[family]), TINY,
                                     num_classes)
    randomize(model, std=0.5)
    model.train()
    return model


def _step(model, batch_size=3):
    images, samples = bm.synthetic_batch(model, batch_size)
    loss = model.parse_losses(model.loss(images, samples))[0]
    loss.backward()


class _Gathers(TorchDispatchMode):
    """The shapes of the tensors indexed by ``aten.index`` (gathers)."""

    def __init__(self):
        super().__init__()
        self.sources = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.index.Tensor:
            self.sources.append(tuple(args[0].shape))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize('family', ['coop', 'cocoop', 'ftp'])
def test_prefix_keys_values_are_not_gathered_per_sequence(family):
    # 50 ImageNet names: several EOT-length groups, packed per block
    model = _model(family, num_classes=50)
    tower = model.clip.text
    heads = tower.blocks[0].attn.num_heads
    with _Gathers() as gathers:
        _step(model)
    prefix_states = [s for s in gathers.sources
                     if len(s) == 4 and s[1] == heads]
    assert prefix_states == []


@pytest.mark.parametrize('family', ['coop', 'cocoop', 'ftp'])
def test_text_blocks_project_all_rows_at_once(family):
    # 50 ImageNet names: several EOT lengths, one projection call per block
    model = _model(family, num_classes=50)
    tower = model.clip.text
    eot = model._current_class_set().tokens.eot_index
    assert len(set(eot.tolist())) >= 3
    calls = [0] * tower.layers
    handles = [b.ln_1.register_forward_hook(
        lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, b in enumerate(tower.blocks)]
    try:
        _step(model)
    finally:
        for h in handles:
            h.remove()
    assert calls == [1] * tower.layers


def test_prefix_per_sequence_equals_the_gather():
    torch.manual_seed(0)
    for groups, per_group in ((1, 5), (3, 4)):
        prefix = torch.randn(groups, 2, 3, 4, requires_grad=True)
        group = torch.arange(groups).repeat_interleave(per_group)
        repeats = sequence_repeats(group, groups)
        assert repeats == per_group
        out = prefix_per_sequence(prefix, group, repeats)
        w = torch.randn_like(out)
        (grad, ) = torch.autograd.grad((out * w).sum(), prefix)
        (ref_grad, ) = torch.autograd.grad((prefix[group] * w).sum(), prefix)
        torch.testing.assert_close(out, prefix[group], atol=0, rtol=0)
        torch.testing.assert_close(grad, ref_grad, atol=1e-6, rtol=0)
    # a chunk that does not start at image 0 / uneven counts: the gather
    assert sequence_repeats(torch.tensor([1, 1, 2, 2]), 3) is None
    assert sequence_repeats(torch.tensor([0, 0, 1]), 2) is None
    group = torch.tensor([0, 2, 2])
    torch.testing.assert_close(prefix_per_sequence(prefix, group, None),
                               prefix[group])


@pytest.mark.parametrize('family', ['coop', 'kgcoop'])
def test_frozen_image_tower_runs_without_autograd(family):
    model = _model(family)
    tower = model.clip.visual
    grad_modes = []
    encode = tower.encode
    tower.encode = lambda *a, **k: grad_modes.append(
        torch.is_grad_enabled()) or encode(*a, **k)
    try:
        _step(model)
    finally:
        del tower.encode
    assert grad_modes == [False]
    assert model.text_prompt.ctx.grad is not None  # and the prompts train


def test_kgcoop_anchors_encoded_once_across_training_steps():
    model = _model('kgcoop')
    calls = []
    encode = model.clip.encode_token_ids
    model.clip.encode_token_ids = lambda *a, **k: calls.append(1) or encode(
        *a, **k)
    for _ in range(2):
        model.zero_grad(set_to_none=True)
        _step(model)
    assert len(calls) == 1
