"""The properties the mutual prompt learning abstract claims for FTP and TVP
(IJCV 2024; the project's second reading, docs/methods_tomm_mpl.md), shown
on the shipped tiny CLIP ``mmpl:shapes-vit`` with images from the project's
shape generator."""
import pytest
import torch
import torch.nn.functional as F

from mmpl.clip import build_class_tokens
from mmpl.prompts import FTP, TVP, CoOp, FrozenImageFeatures
from helpers import samples, train_losses
from two_objects import (ARCH, NAMES, PRETRAINED, anchors, shapes_clip,
                         single_object_batch)

LABELS = torch.tensor([0, 7, 13, 21, 4, 28])


@pytest.fixture(scope='module')
def clip():
    return shapes_clip()


@pytest.fixture(scope='module')
def f0(clip):
    """(6, D) frozen features of clean single-object images of LABELS."""
    with torch.no_grad():
        return clip.encode_image(single_object_batch(LABELS)).float()


@pytest.fixture(scope='module')
def text(clip):
    """(1, 30, D) normalised frozen class text features."""
    return F.normalize(anchors(clip), dim=-1).unsqueeze(0)


# -------------------------------------------------------------------- FTP
def _assert_exact_orthogonal_decomposition(ftp, f0):
    parts = ftp.components(f0)  # (B, M, D)
    assert parts.shape == (len(f0), 4, f0.shape[1])
    torch.testing.assert_close(parts.sum(1), f0, atol=1e-5, rtol=1e-5)
    gram = parts @ parts.transpose(1, 2)  # (B, M, M)
    off = gram - torch.diag_embed(torch.diagonal(gram, dim1=1, dim2=2))
    assert off.abs().amax() < 1e-5 * f0.norm(dim=-1).amax() ** 2
    assert (torch.diagonal(gram, dim1=1, dim2=2) > 0).all()  # none empty


def test_ftp_components_sum_to_f0_and_are_orthogonal(clip, f0):
    torch.manual_seed(0)
    _assert_exact_orthogonal_decomposition(FTP(clip), f0)


def test_ftp_token_m_reads_only_its_own_component(clip, f0):
    """Finer-grained semantics, one per token: changing f0 inside block k's
    subspace (a rotation there, |f0| unchanged) changes token k's shift
    only."""
    torch.manual_seed(0)
    ftp = FTP(clip)
    u = ftp.basis.weight.detach()  # (D, D)
    cols = torch.arange(u.shape[0]).tensor_split(4)[2][:2]  # block k = 2
    coeff = f0 @ u
    rotated = coeff.clone()
    rotated[:, cols[0]], rotated[:, cols[1]] = coeff[:, cols[1]], \
        -coeff[:, cols[0]]
    moved = rotated @ u.t()
    torch.testing.assert_close(moved.norm(dim=-1), f0.norm(dim=-1))
    with torch.no_grad():
        s = ftp.semantics(FrozenImageFeatures(f0))  # (B, M, Dt)
        s_moved = ftp.semantics(FrozenImageFeatures(moved))
    change = (s_moved - s).norm(dim=-1)  # (B, M)
    assert (change[:, 2] > 1e-4).all()
    assert change[:, [0, 1, 3]].amax() < 1e-5


def test_ftp_shifts_stay_distinct_after_training(clip, f0):
    from mmpl.models import PromptCLIPClassifier
    torch.manual_seed(0)
    model = PromptCLIPClassifier(
        clip=dict(arch=ARCH, pretrained=PRETRAINED),
        text_prompt=dict(type='FTP'), classnames=NAMES[:6])
    ftp = model.text_prompt
    basis = ftp.basis.weight.detach().clone()
    model.train()
    images = single_object_batch(torch.arange(6), seed=3)
    history = train_losses(model, images, samples(range(6)), steps=4,
                           lr=0.05)
    assert history[-1] < history[0]
    assert not torch.allclose(ftp.basis.weight, basis)  # the basis learns
    _assert_exact_orthogonal_decomposition(ftp, f0)  # ... and stays exact
    with torch.no_grad():
        s = F.normalize(ftp.semantics(FrozenImageFeatures(f0)), dim=-1)
    cos = s @ s.transpose(1, 2)  # (B, M, M)
    off = cos[:, ~torch.eye(4, dtype=torch.bool)]
    assert off.abs().amax() < 0.9, off.abs().amax()


# -------------------------------------------------------------------- TVP
def test_tvp_removes_the_semantics_shared_by_all_classes(clip, f0, text):
    """Adding one vector to every class text feature leaves the visual
    prompt unchanged (centring + a shift-invariant affinity)."""
    torch.manual_seed(0)
    tvp = TVP(clip)
    with torch.no_grad():
        out = tvp.prompts_from_unit_text(text, f0).prompts
        v = 0.5 * torch.randn(text.shape[-1])
        shifted = tvp.prompts_from_unit_text(text + v, f0).prompts
    torch.testing.assert_close(shifted, out, atol=1e-5, rtol=1e-4)
    assert out.abs().amax() > 1e-3


def test_tvp_a_confident_image_drops_classes_at_any_class_count(clip, f0,
                                                                text):
    five = text[:, LABELS[:5]]  # a 5-class set holding the images' classes
    tvp = TVP(clip)
    _, log_p, kept = tvp.reorganized_text(five, f0[:5])
    assert (kept.sum(1) < 5).all()  # every image drops a class
    assert kept[torch.arange(5), torch.arange(5)].all()  # its own is kept
    # the first reading (top min(5, C)) drops nothing here
    _, _, topk = TVP(clip, keep='topk').reorganized_text(five, f0[:5])
    assert topk.all()
    # 30 classes: at most k_max, the kept mass reaches rho
    _, log_p, kept = tvp.reorganized_text(text, f0)
    assert (kept.sum(1) <= 8).all()
    scores = tvp.scale * F.normalize(f0, dim=-1) @ text[0].t()
    mass = (scores.softmax(1) * kept).sum(1)
    assert ((mass >= 0.9) | (kept.sum(1) == 8)).all()
    # the kept affinities are renormalised; the dropped have none
    torch.testing.assert_close(log_p.exp().sum(1), torch.ones(len(f0)))
    assert torch.isneginf(log_p[~kept]).all()


@pytest.mark.parametrize('weighting', ['scores', 'values'])
def test_tvp_a_dropped_class_gets_zero_gradient(clip, f0, text, weighting):
    torch.manual_seed(0)
    tvp = TVP(clip, weighting=weighting, rho=0.99)
    g = text.clone().requires_grad_(True)
    _, _, kept = tvp.reorganized_text(g, f0)
    dropped = ~kept.any(0)  # classes no image keeps
    assert dropped.sum() >= 10 and kept.sum(1).amax() > 1
    tvp.prompts_from_unit_text(g, f0).prompts.pow(2).sum().backward()
    assert torch.equal(g.grad[0, dropped], torch.zeros_like(
        g.grad[0, dropped]))
    kept_any = kept.any(0)
    assert (g.grad[0, kept_any].norm(dim=-1) > 0).all()


def test_tvp_text_prompts_receive_gradient_through_tvp(clip, f0):
    """The text prompts the image: the visual prompt's gradient reaches the
    text prompt parameters."""
    torch.manual_seed(0)
    coop = CoOp(clip)
    tvp = TVP(clip)
    tokens = build_class_tokens(clip, NAMES[:5], 4, 'a photo of a')
    prompts = coop(tokens)
    g = clip.encode_class_prompts(prompts.embeddings, prompts.eot_index,
                                  prompts.shared_prefix).float()
    vp = tvp(g, FrozenImageFeatures(f0[:5])).prompts
    vp.pow(2).sum().backward()
    assert coop.ctx.grad is not None and coop.ctx.grad.abs().amax() > 0
