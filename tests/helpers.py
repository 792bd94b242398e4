"""Helpers shared by several test modules (imported as ``helpers``; pytest
puts this folder on ``sys.path``)."""
import contextlib
import os.path as osp
import runpy
import shutil
from types import SimpleNamespace

import torch
from mmpretrain.structures import DataSample

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(rel_path: str) -> SimpleNamespace:
    """The globals of a script under tools/ (run with ``runpy``, not as
    ``__main__``), for the tests of that tool's command line; everything
    else calls :mod:`mmpl.apis`."""
    return SimpleNamespace(**runpy.run_path(
        osp.join(ROOT, rel_path),
        run_name='tool_' + rel_path.replace('/', '_')[:-3]))


def one_line(exc_info) -> str:
    """The message of a ``pytest.raises`` result, asserted to be one
    non-empty line (mmpl's rule for errors a user sees)."""
    msg = str(exc_info.value)
    assert msg and '\n' not in msg, msg
    return msg


def copy_dataset(src: str, tmp_path, name: str = 'copy') -> str:
    """A copy of the dataset folder ``src`` under ``tmp_path/name`` (same
    folder name), for a test that edits or breaks it."""
    dst = osp.join(str(tmp_path), name, osp.basename(src))
    shutil.copytree(src, dst)
    return dst


def offline_config(config: str, work_dir, options=None, name='test'):
    """``config`` as ``tools/misc/smoke.py`` runs it (tiny CLIP, miniature
    data under ``<work_dir>/data``, unformatted config text), for a test to
    adjust before building its runner."""
    from mmpl.apis import load_config
    from mmpl.testing import make_offline
    cfg = load_config(config, options, work_dir=str(work_dir), quiet=True,
                      unique_name=name)
    return make_offline(cfg, osp.join(str(work_dir), 'data'))


def record_blocks(blocks):
    """Forward pre-/post-hooks: the input and output of every block.
    Returns (inputs, outputs, handles); remove the handles after use."""
    inputs, outputs, handles = {}, {}, []
    for i, block in enumerate(blocks):
        handles.append(block.register_forward_pre_hook(
            lambda m, args, i=i: inputs.__setitem__(i, args[0].detach())))
        handles.append(block.register_forward_hook(
            lambda m, args, out, i=i: outputs.__setitem__(i, out.detach())))
    return inputs, outputs, handles


def build_classifier(text_prompt: dict, classnames, arch='mmpl-tiny-vit',
                     seed: int = 0, **kwargs):
    """A ``PromptCLIPClassifier`` on a random tiny CLIP (the same CLIP for
    the same ``seed``); ``kwargs`` are the classifier's other arguments."""
    from mmpl.models import PromptCLIPClassifier
    torch.manual_seed(seed)
    return PromptCLIPClassifier(clip=dict(arch=arch), text_prompt=text_prompt,
                                classnames=classnames, **kwargs)


def shapes_classifier(text_prompt: dict, classnames, perturb: float = 0.0,
                      **kwargs):
    """A ``PromptCLIPClassifier`` on the lab's pretrained tiny CLIP
    ``mmpl-shapes-vit`` (64 px, 3 + 3 layers; prompts initialised under
    seed 0); ``perturb`` > 0 adds that std of
    noise to every prompt parameter (trained-looking prompts, every path
    visible)."""
    from mmpl.models import PromptCLIPClassifier
    from mmpl_lab.clips import SHAPES_CLIP
    torch.manual_seed(0)
    clf = PromptCLIPClassifier(clip=SHAPES_CLIP, text_prompt=text_prompt,
                               classnames=classnames, **kwargs)
    if perturb:
        with torch.no_grad():
            for p in clf.text_prompt.parameters():
                p.add_(perturb * torch.randn_like(p))
    return clf


def samples(labels):
    """DataSamples carrying ``labels``."""
    return [DataSample().set_gt_label(int(y)) for y in labels]


def randomize(module, std=0.3):
    """Visible, non-degenerate parameters (the tiny CLIP is random)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * std)


def assert_only_prompts_get_gradients(model) -> None:
    """After a backward: every trainable parameter has a non-zero gradient,
    no CLIP weight is trainable or has a gradient, and the state dict holds
    no CLIP weight."""
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for name, p in model.clip.model.named_parameters():
        assert not p.requires_grad and p.grad is None, name
    assert not any(k.startswith('clip.') for k in model.state_dict())


def train_losses(model, images, data_samples, steps: int, lr: float):
    """Total training loss of ``steps`` SGD (momentum 0.9) steps on one
    fixed batch."""
    optim = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    history = []
    for _ in range(steps):
        loss = sum(model.loss(images, data_samples).values())
        optim.zero_grad()
        loss.backward()
        optim.step()
        history.append(loss.item())
    return history


def assert_close_to_scale(actual: torch.Tensor, expected: torch.Tensor,
                          rel: float = 1e-4, scale=None, msg=None) -> None:
    """Equal up to ``rel`` times ``scale`` (default: the largest magnitude
    of ``expected``). Two float32 formulations of the same sum differ by
    rounding that grows with the magnitudes summed (and with the CPU
    kernels: the portable ones, AVX2, AVX-512 and AMX order sums
    differently), so a fixed absolute tolerance passes on one machine and
    fails on another. For gradients pass the largest magnitude over all
    parameters' gradients: backpropagation sums terms of that size into
    every gradient, also into a small one."""
    if scale is None:
        scale = float(expected.detach().abs().max()) if expected.numel() \
            else 0.
    torch.testing.assert_close(
        actual, expected, rtol=rel, atol=rel * max(float(scale), 1e-3),
        msg=lambda detail: f'{msg}: {detail}' if msg else detail)


def family_configs() -> dict:
    """One config of every method family, from the catalogue (the
    metafiles): family (``coop``, ``ctp_tft`` ...) -> its first base-to-new
    EuroSAT config."""
    from mmpl.apis import list_models
    configs = {}
    for model in list_models('*_b2n_eurosat'):
        family = model.method.lower().replace('+', '_')
        configs.setdefault(family, model.config)
    return configs


#: family -> config (``configs/...``) of every method family
FAMILY_CONFIGS = family_configs()


def losses_and_gradients(model, loss_of, forms):
    """({form: loss}, {form: {parameter: gradient}}) of ``loss_of(form)``
    for each of ``forms`` (e.g. the benchmark's two formulations), one
    backward each from zero gradients."""
    losses, grads = {}, {}
    for form in forms:
        model.zero_grad(set_to_none=True)
        loss = loss_of(form)
        loss.backward()
        losses[form] = float(loss.detach())
        grads[form] = {n: p.grad.clone() for n, p in model.named_parameters()
                       if p.grad is not None}
    return losses, grads


def devices():
    """``'cpu'`` and ``'cuda'`` as parameters: the CUDA case is marked
    ``cuda`` (conftest.py skips it with a reason where no GPU is visible;
    ``pytest -m cuda`` selects it), so each check's logic also runs on
    CPU in the normal suite."""
    import pytest
    return ['cpu', pytest.param('cuda', marks=pytest.mark.cuda)]


@contextlib.contextmanager
def text_plans(model):
    """The text-encoding plans ``model``'s CLIP runs while the context is
    open (one per encoder call; FrozenCLIP's public text observer)."""
    plans = []
    with model.clip.observe_text(plans.append):
        yield plans
