"""The fast path equals the per-image reference on CUDA too (issue 35):
every method family's logits, training loss and gradients against the
per-image formulation of the original code (the lab's benchmark
formulations, ``mmpl_lab.speed``), on the tiny random CLIP.

Stated tolerances (relative to the largest magnitude of the reference's
logits, resp. of its gradients over all parameters; TF32 off, so fp32 means
fp32 on the GPU too):

========================  =============  ==============
comparison                CPU            CUDA
========================  =============  ==============
fp32 logits, loss         1e-5           1e-4
fp32 gradients            1e-4           1e-3
AMP bf16 logits vs fp32   1e-1           1e-1
AMP fp16 logits vs fp32   2e-2           2e-2
========================  =============  ==============

The two formulations sum in different orders and, on a GPU, through
different kernels (batched and fused attention against one sequence set
at a time), so CUDA gets ten times CPU's fp32 tolerance; the AMP rows
bound the rounding of a mixed-precision forward (bf16 keeps 8 bits of
mantissa, fp16 11) against the fp32 reference: three to five times the
largest error seen on CPU (bf16 3.7e-2, fp16 3.8e-3, IVLP and PromptSRC).
The ``cpu`` cases run in
the normal suite; the ``cuda`` ones are marked ``cuda`` (skipped with a
reason without a GPU; ``pytest -m cuda``)."""
import os.path as osp

import pytest
import torch

from mmpl.testing import TINY_ARCH
from mmpl_lab import speed as bm
from helpers import (FAMILY_CONFIGS, ROOT, assert_close_to_scale, devices,
                     losses_and_gradients, randomize)

FP32_LOGITS = {'cpu': 1e-5, 'cuda': 1e-4}
FP32_GRADS = {'cpu': 1e-4, 'cuda': 1e-3}
AMP_LOGITS = {'bf16': (torch.bfloat16, 1e-1), 'fp16': (torch.float16, 2e-2)}


@pytest.fixture
def no_tf32():
    """fp32 matmuls and convolutions in full fp32 on CUDA (TF32 off)."""
    saved = (torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    (torch.backends.cuda.matmul.allow_tf32,
     torch.backends.cudnn.allow_tf32) = saved


def _model(family: str, device: str, num_classes: int = 7):
    options = {'model.text_chunk_size': 5}
    if family == 'ctp_tft':
        # the alignment loss's text-to-image term contrasts the images of
        # a batch: the per-image formulation cannot compute it
        options['model.extra_losses'] = []
    torch.manual_seed(0)
    model = bm.build_benchmark_model(
        osp.join(ROOT, FAMILY_CONFIGS[family]), TINY_ARCH, num_classes,
        device=device, cfg_options=options)
    randomize(model, std=0.5)  # prompts that matter (some start at zero)
    return model


@pytest.mark.parametrize('family', sorted(FAMILY_CONFIGS))
@pytest.mark.parametrize('device', devices())
def test_fast_path_equals_per_image_reference(device, family, no_tf32):
    model = _model(family, device)
    images, samples = bm.synthetic_batch(model, 3)
    assert images.device.type == device
    model.eval()
    with torch.no_grad():
        ref = bm.logits(model, images, 'reference')
        fast = bm.logits(model, images, 'mmpl')
    scale = float(ref.abs().max())
    assert float((fast - ref).abs().max()) <= FP32_LOGITS[device] * scale

    model.train()
    losses, grads = losses_and_gradients(
        model, lambda form: bm.training_loss(model, images, samples, form),
        bm.FORMULATIONS)
    assert losses['mmpl'] == pytest.approx(
        losses['reference'], abs=FP32_LOGITS[device] * max(
            abs(losses['reference']), 1.0))
    assert grads['mmpl'].keys() == grads['reference'].keys()
    assert grads['mmpl']  # something trains
    grad_scale = max(float(g.abs().max()) for g in grads['reference'].values())
    for name, g in grads['mmpl'].items():
        assert g.device.type == device
        assert_close_to_scale(g, grads['reference'][name],
                              rel=FP32_GRADS[device], scale=grad_scale,
                              msg=name)


@pytest.mark.parametrize('precision', sorted(AMP_LOGITS))
@pytest.mark.parametrize('family', sorted(FAMILY_CONFIGS))
@pytest.mark.parametrize('device', devices())
def test_fast_path_under_amp_is_close_to_the_fp32_reference(
        device, family, precision, no_tf32):
    """The fast path under autocast (as ``--amp`` runs it) against the
    fp32 per-image reference: the mixed-precision rounding only."""
    dtype, tolerance = AMP_LOGITS[precision]
    model = _model(family, device)
    images, _ = bm.synthetic_batch(model, 3)
    model.eval()
    with torch.no_grad():
        ref = bm.logits(model, images, 'reference')
        with torch.autocast(device, dtype=dtype):
            fast = bm.logits(model, images, 'mmpl')
    assert fast.dtype == torch.float32  # the classifier's logits stay fp32
    assert torch.isfinite(fast).all()
    scale = float(ref.abs().max())
    assert float((fast - ref).abs().max()) <= tolerance * scale
