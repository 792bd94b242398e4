"""Training on a GPU (issue 35): every method family's training step in
fp32 and under AMP (bf16, fp16), ``tools/train.py --amp`` end to end on a
tiny offline config, and the checkpoint it writes read back on a CPU.

Every check takes a ``device``: ``'cpu'`` runs in the normal suite (the
same logic; AMP there is CPU autocast, as mmengine's ``AmpOptimWrapper``
refuses a CPU), ``'cuda'`` is marked ``cuda``: conftest.py skips it with a
reason where no GPU is visible, ``pytest -m cuda`` selects it and
``projects/lab/tools/gpu_check.sh`` runs it. The fast path against the
per-image reference on CUDA is in ``projects/lab/tests/test_cuda_fast_path.py``
(it uses the lab's benchmark formulations)."""
import contextlib
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from helpers import (FAMILY_CONFIGS, ROOT, devices, load_tool, offline_config,
                     samples)

#: precision -> autocast dtype (None: fp32, no autocast)
PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
#: names of 1, 2 and 4 words: the class prompts fall in several length
#: groups (each cut after its own EOT)
CLASSNAMES = ['sea', 'dog house', 'annual crop land', 'a big red fire truck']
COOP = osp.join(ROOT, FAMILY_CONFIGS['coop'])

train_tool = load_tool('tools/train.py')


def build_family(family: str, device: str):
    """The family's config on the tiny random CLIP, on ``device``."""
    from mmpretrain.registry import MODELS

    from mmpl.testing import TINY_CLIP
    from mmpl.utils.config_file import read_config
    from mmpl.utils.config_tools import replace_clip
    cfg = read_config(osp.join(ROOT, FAMILY_CONFIGS[family]))
    replace_clip(cfg, TINY_CLIP)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.set_classes(CLASSNAMES)
    return model.to(device)


def optim_wrapper(model, device: str, precision: str):
    """(optimizer wrapper, context of the step): on CUDA the wrapper
    ``--amp`` selects (``AmpOptimWrapper``: autocast in its
    ``optim_context``, fp16 with dynamic loss scaling), on CPU a plain
    wrapper inside CPU autocast."""
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    dtype = PRECISIONS[precision]
    if dtype is None:
        return OptimWrapper(optimizer=optimizer), contextlib.nullcontext()
    if device == 'cuda':
        return (AmpOptimWrapper(optimizer=optimizer, dtype=dtype),
                contextlib.nullcontext())
    return (OptimWrapper(optimizer=optimizer),
            torch.autocast('cpu', dtype=dtype))


def batch(size: int = 2) -> dict:
    """What the dataloader hands ``train_step``: uint8 images on the CPU
    (the data preprocessor moves and normalises them) and labels."""
    gen = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (size, 3, 224, 224), generator=gen,
                           dtype=torch.uint8)
    return dict(inputs=list(images),
                data_samples=samples([i % len(CLASSNAMES)
                                      for i in range(size)]))


@pytest.mark.parametrize('precision', sorted(PRECISIONS))
@pytest.mark.parametrize('family', sorted(FAMILY_CONFIGS))
@pytest.mark.parametrize('device', devices())
def test_training_step(device, family, precision):
    """``model.train_step`` as the runner calls it: the step runs in the
    requested precision, its losses are finite, the prompts (and only
    they) change and stay fp32 on the device."""
    model = build_family(family, device)
    model.train()
    wrapper, context = optim_wrapper(model, device, precision)
    seen = []  # the autocast state the model's forward ran under

    def record(module, args, kwargs):
        seen.append(torch.get_autocast_dtype(device)
                    if torch.is_autocast_enabled(device) else None)

    handle = model.register_forward_pre_hook(record, with_kwargs=True)
    trainable = {n: p.detach().clone() for n, p in model.named_parameters()
                 if p.requires_grad}
    assert trainable
    frozen = {n: p.detach().clone() for n, p in model.named_parameters()
              if not p.requires_grad}
    changed = False
    # a dynamic fp16 loss scale may skip a first step on overflow
    for _ in range(3):
        with context:
            log_vars = model.train_step(batch(), wrapper)
        losses = {k: float(v.detach()) for k, v in log_vars.items()}
        assert all(math.isfinite(v) for v in losses.values()), losses
        changed = any(not torch.equal(p.detach(), trainable[n])
                      for n, p in model.named_parameters()
                      if p.requires_grad)
        if changed:
            break
    handle.remove()
    assert changed, f'{family} {precision}: no prompt parameter changed'
    assert seen and set(seen) == {PRECISIONS[precision]}, seen
    for name, p in model.named_parameters():
        assert p.device.type == device, name
        assert p.dtype == torch.float32, name
        assert torch.isfinite(p).all(), name
        if not p.requires_grad:
            assert torch.equal(p.detach(), frozen[name]), name
    assert model.clip.device.type == device


def test_amp_dtype_is_checked_before_the_gpu():
    from mmpl.apis.run import enable_amp
    from mmpl.utils.errors import ConfigError
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    with pytest.raises(ConfigError, match='--amp-dtype must be one of'):
        enable_amp(cfg, 'float32')
    if torch.cuda.is_available():
        enable_amp(cfg, 'float16')
        assert cfg.optim_wrapper == dict(type='AmpOptimWrapper',
                                         dtype='float16',
                                         loss_scale='dynamic')
    else:
        with pytest.raises(ConfigError, match='needs a CUDA GPU'):
            enable_amp(cfg, 'bfloat16')


def _offline_config_file(tmp_path) -> str:
    """CoOp on the tiny CLIP and miniature data, one epoch, as a config
    file (what a user hands ``tools/train.py``)."""
    cfg = offline_config(COOP, tmp_path / 'run')
    path = str(tmp_path / 'coop_offline.py')
    Config(cfg.to_dict()).dump(path)
    return path


@pytest.mark.parametrize('amp', [None, 'float16', 'bfloat16'])
@pytest.mark.parametrize('device', devices())
def test_train_tool_end_to_end_and_checkpoint_reads_on_cpu(
        device, amp, tmp_path, capsys):
    """``tools/train.py [--amp | --amp-dtype bfloat16]`` trains and
    evaluates a tiny offline config; its checkpoint loads on a CPU with
    ``torch.load(weights_only=True, map_location='cpu')`` and classifies
    there. On CPU, ``--amp`` is refused in one line instead."""
    if device == 'cpu' and torch.cuda.is_available():
        pytest.skip('the CPU case checks the refusal of --amp without a GPU')
    work = tmp_path / 'work'
    argv = [_offline_config_file(tmp_path), '--work-dir', str(work)]
    if amp is not None:
        argv += ['--amp'] if amp == 'float16' else ['--amp-dtype', amp]
    code = train_tool.main(argv)
    err = capsys.readouterr().err
    if device == 'cpu' and amp is not None:
        assert code == 2
        lines = [line for line in err.splitlines()
                 if line.startswith('mmpl: error: ')]
        assert len(lines) == 1 and '--amp needs a CUDA GPU' in lines[0], err
        return
    assert code == 0, err[-3000:]
    assert osp.isfile(work / 'results.json')
    ckpt_path = str(work / 'epoch_1.pth')
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    assert ckpt['state_dict'], 'no prompt parameters saved'
    for name, value in ckpt['state_dict'].items():
        assert value.device.type == 'cpu', name
        assert value.dtype == torch.float32, name
        assert torch.isfinite(value).all(), name
    assert ('loss_scaler' in ckpt['optimizer']) == (amp is not None)

    from mmpl.apis import PromptInferencer
    inferencer = PromptInferencer(ckpt_path, device='cpu')
    image = np.random.default_rng(0).integers(0, 256, (224, 224, 3),
                                              dtype=np.uint8)
    [result] = inferencer([image], topk=100)
    assert result['pred_class'] in inferencer.classes
    assert sum(result['topk_scores']) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('device', devices())
def test_scaled_cosines_stay_fp32_under_autocast(device, dtype):
    """The logits, the zero-shot affinity (DGPrompt's guidance) and TVP's
    affinity are scaled cosines (scale 100 for OpenAI's CLIP): under AMP
    they are computed in fp32, what fp32 gives (up to 1e-4: another
    cuBLAS algorithm may be picked), not rounded to the autocast dtype (a
    bf16 cosine at scale 100 is up to ~0.2 off)."""
    from mmpl.prompts.guidance import zero_shot_affinity
    from mmpl.structures import cosine_logits
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(3, 16, generator=gen).to(device)
    g = torch.randn(1, 5, 16, generator=gen).to(device)
    scale = torch.tensor(100.0, device=device)
    tvp = build_family('ftp_tvp', device).visual_prompt
    unit = torch.nn.functional.normalize(g, dim=-1)
    checks = {
        'logits': lambda: cosine_logits(f, g, scale),
        'per-image text': lambda: cosine_logits(f, g.expand(3, -1, -1),
                                                scale),
        'per-class image': lambda: cosine_logits(f[:, None].expand(-1, 5, -1),
                                                 g, scale),
        'zero-shot affinity': lambda: zero_shot_affinity(f, g[0], scale),
        'TVP affinity': lambda: tvp.affinity_scores(unit, f),
    }
    for name, compute in checks.items():
        full = compute()
        with torch.autocast(device, dtype=dtype):
            mixed = compute()
        assert mixed.dtype == torch.float32, name
        torch.testing.assert_close(mixed, full, rtol=0, atol=1e-4,
                                   msg=lambda detail: f'{name}: {detail}')
