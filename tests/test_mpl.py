"""Tests of mutual prompt learning (reconstruction): the fine-grained text
prompt FTP and the text-reorganized visual prompt TVP, alone, together and
with CoOp/CoCoOp, against per-image Python references (tiny random CLIP,
CPU)."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from mmpl.clip import build_class_tokens
from mmpl.prompts import FTP, TVP, CoCoOp, FrozenImageFeatures
from mmpl.prompts.ftp import diversity_loss
from mmpl.structures import Needs
from helpers import (assert_only_prompts_get_gradients, build_classifier,
                     randomize, samples, train_losses)

CLASSES = ['Forest', 'Sea_or_Lake', 'Annual Crop Land', 'River', 'Highway',
           'red fox', 'tulip']
TINY = dict(arch='mmpl-tiny-vit')
COOP = dict(type='CoOp', n_ctx=4, ctx_init='a photo of a')
COCOOP = dict(type='CoCoOp', n_ctx=4, ctx_init='a photo of a')
FTP_CFG = dict(type='FTP')
# rho 0.5: on the random tiny CLIP the affinities are flat, so the
# mass rule keeps about half of the 7 classes (dropping takes part)
TVP_CFG = dict(type='TVP', rho=0.5)


def build(text_prompt=FTP_CFG, visual_prompt=TVP_CFG, classnames=CLASSES,
          **kwargs):
    return build_classifier(text_prompt, classnames,
                            visual_prompt=visual_prompt, **kwargs)


def test_registered():
    assert MODELS.get('FTP') is FTP and MODELS.get('TVP') is TVP


# -------------------------------------------------------------------- FTP
def test_ftp_gives_each_context_token_its_own_semantics(tiny_clip, frozen):
    ftp = FTP(tiny_clip)
    tokens = build_class_tokens(tiny_clip, CLASSES, 4)
    s = ftp.semantics(frozen)  # (B, M, Dt)
    assert s.shape == (3, 4, tiny_clip.text_width)
    for b in range(3):
        for i in range(4):
            for j in range(i + 1, 4):
                assert not torch.allclose(s[b, i], s[b, j], atol=1e-3)
    prompts = ftp(tokens, frozen).embeddings  # (B, C, L, Dt)
    assert prompts.shape[:2] == (3, len(CLASSES))
    shift = prompts[:, :, 1:5] - ftp.ctx  # what was added to each token
    torch.testing.assert_close(shift, s.unsqueeze(1).expand_as(shift))
    assert not torch.allclose(s[0], s[1])  # and it depends on the image


@pytest.mark.parametrize('tie', [True, False])
def test_ftp_with_tied_heads_is_cocoop(tiny_clip, frozen, tie):
    """tie_heads=True, or M heads all holding the same weights, gives
    CoCoOp's one shared shift."""
    torch.manual_seed(1)
    cocoop = CoCoOp(tiny_clip)
    randomize(cocoop)
    ftp = FTP(tiny_clip, decomposition='heads', tie_heads=tie)
    assert ftp.heads.num_heads == (1 if tie else 4)
    ftp.heads.load_mlp(cocoop.meta_net)
    with torch.no_grad():
        ftp.ctx.copy_(cocoop.ctx)
    tokens = build_class_tokens(tiny_clip, CLASSES, 4)
    expected = cocoop(tokens, frozen).embeddings
    torch.testing.assert_close(ftp(tokens, frozen).embeddings, expected,
                               atol=1e-6, rtol=0)


def test_ftp_tied_in_classifier_equals_cocoop(images):
    cocoop = build(COCOOP, None)
    ftp = build(dict(type='FTP', decomposition='heads', tie_heads=True),
                None)
    randomize(cocoop.text_prompt)
    ftp.text_prompt.heads.load_mlp(cocoop.text_prompt.meta_net)
    with torch.no_grad():
        ftp.text_prompt.ctx.copy_(cocoop.text_prompt.ctx)
        torch.testing.assert_close(ftp(images), cocoop(images), atol=1e-5,
                                   rtol=0)


def test_ftp_declares_what_it_needs(tiny_clip):
    # f0 always (image-conditioned prompts), tokens and anchors by option
    assert FTP(tiny_clip).needs == Needs(frozen_image=True)
    assert FTP(tiny_clip, decomposition='queries').needs == Needs(
        frozen_image=True, image_tokens=True)
    assert FTP(tiny_clip, decomposition='queries',
               attend_over='global').needs == Needs(frozen_image=True)
    assert FTP(tiny_clip, class_gating=True).needs == Needs(
        frozen_image=True, anchors=True)
    with pytest.raises(ValueError, match='decomposition'):
        FTP(tiny_clip, decomposition='linear')


def test_ftp_queries_attend_over_the_image_tokens(tiny_clip, frozen):
    ftp = FTP(tiny_clip, decomposition='queries')
    s = ftp.semantics(frozen)
    assert s.shape == (3, 4, tiny_clip.text_width)
    assert not torch.allclose(s[:, 0], s[:, 1])
    other = FrozenImageFeatures(frozen.global_feature,
                                frozen.tokens.flip(0))
    assert not torch.allclose(ftp.semantics(other), s)  # reads Z0
    with pytest.raises(ValueError, match='needs the image tokens'):
        ftp.semantics(FrozenImageFeatures(frozen.global_feature))


def test_ftp_class_gating(tiny_clip, frozen):
    tokens = build_class_tokens(tiny_clip, CLASSES, 4)
    with torch.no_grad():
        anchors = tiny_clip.encode_token_ids(tiny_clip.tokenize(
            [f'a photo of a {c}.' for c in CLASSES])).float()
    torch.manual_seed(0)
    plain = FTP(tiny_clip)
    torch.manual_seed(0)
    gated = FTP(tiny_clip, class_gating=True)
    out = gated(tokens, frozen, anchors).embeddings
    assert out.shape[:2] == (3, len(CLASSES))
    # zero-initialised gates (= 1): ungated FTP at the start
    torch.testing.assert_close(
        out, plain(tokens, frozen).embeddings.expand_as(out))
    randomize(gated.gate)
    out = gated(tokens, frozen, anchors).embeddings
    assert not torch.allclose(out[:, 0, 1:5], out[:, 1, 1:5])
    with pytest.raises(ValueError, match='needs the class anchors'):
        gated(tokens, frozen)


def test_diversity_loss_values_and_classifier_term(images):
    eye = torch.eye(4, 8).unsqueeze(0)
    assert diversity_loss(eye).item() == 0.0
    same = torch.ones(2, 4, 8)
    assert diversity_loss(same).item() == pytest.approx(1.0)
    # (1, 1, 0, 0) rows 0/1 identical, others orthogonal: 2 of 12 pairs
    rows = torch.tensor([[1., 0.], [1., 0.], [0., 1.], [0., 1.]])
    assert diversity_loss(rows[None]).item() == pytest.approx(4 / 12)
    model = build(dict(type='FTP', diversity_weight=0.5), None)
    model.train()
    losses = model.loss(images, samples([0, 1, 2]))
    assert set(losses) == {'loss_cls', 'loss_ftp_diversity'}
    s = model.text_prompt.semantics(model.frozen_image_pass(images, False))
    torch.testing.assert_close(losses['loss_ftp_diversity'],
                               0.5 * diversity_loss(s))
    assert set(build().loss(images, samples([0, 1, 2]))) == {'loss_cls'}


# -------------------------------------------------------------------- TVP
def _tvp_inputs(tiny_clip, seed=0):
    g = torch.randn(1, len(CLASSES), tiny_clip.embed_dim,
                    generator=torch.Generator().manual_seed(seed))
    return g


def _kept_and_dropped(tvp, g, f0):
    _, _, kept = tvp.reorganized_text(F.normalize(g, dim=-1), f0)
    return kept, [c for c in range(g.shape[1]) if not kept[:, c].any()]


@pytest.mark.parametrize('keep', ['topk', 'mass'])
def test_tvp_without_centring_depends_only_on_the_kept_classes(
        tiny_clip, frozen, keep):
    """centre=False: a dropped class has no influence at all (with
    centring it enters the class-set mean only, without gradient:
    tests/test_properties_mpl.py)."""
    tvp = TVP(tiny_clip, keep=keep, top_k=3, rho=0.5, centre=False)
    g = _tvp_inputs(tiny_clip)
    f0 = frozen.global_feature
    kept, dropped = _kept_and_dropped(tvp, g, f0)
    out = tvp(g, frozen).prompts
    assert out.shape == (3, 4, tiny_clip.vision_width)
    assert dropped
    changed = g.clone()
    # a dropped class's new text: anti-aligned with every image, so it stays
    # dropped, and its softmax mass changes
    changed[0, dropped[0]] = -F.normalize(f0, dim=-1).sum(0) * 3
    assert torch.equal(_kept_and_dropped(tvp, changed, f0)[0], kept)
    torch.testing.assert_close(tvp(changed, frozen).prompts, out, atol=1e-6,
                               rtol=0)
    # a kept class's text does matter (for the images that keep it)
    changed = g.clone()
    first_kept = int(kept[0].nonzero()[0])
    changed[0, first_kept] += 0.5 * torch.randn(tiny_clip.embed_dim)
    assert not torch.allclose(tvp(changed, frozen).prompts[0], out[0])


def test_tvp_changes_with_the_image_affinities(tiny_clip, frozen):
    # a soft temperature: the random tiny CLIP's cosines are far apart
    tvp = TVP(tiny_clip, keep='topk', top_k=3, tau=0.5)
    randomize(tvp.attention, std=0.5)
    g = _tvp_inputs(tiny_clip)
    out = tvp(g, frozen).prompts
    f0 = frozen.global_feature
    unit = F.normalize(g, dim=-1)
    # same kept classes, other affinities: move f0 towards the first kept
    _, log_p, kept = tvp.reorganized_text(unit, f0)
    first = log_p.argmax(1)
    moved = f0 + 0.2 * f0.norm(dim=-1, keepdim=True) * unit[0, first]
    _, log_q, kept_q = tvp.reorganized_text(unit, moved)
    assert torch.equal(kept_q, kept)
    assert not torch.allclose(log_p[kept], log_q[kept])
    moved_out = tvp(g, FrozenImageFeatures(moved)).prompts
    assert not torch.allclose(moved_out, out, atol=1e-4)
    # with the 'values' weighting too
    tvp.weighting = 'values'
    assert not torch.allclose(tvp(g, FrozenImageFeatures(moved)).prompts,
                              tvp(g, frozen).prompts, atol=1e-4)


def test_tvp_top_k_range_and_options(tiny_clip, frozen):
    g = _tvp_inputs(tiny_clip)[:, :3]  # 3 classes
    assert TVP(tiny_clip).num_kept(3) == 3  # min(5, C)
    assert TVP(tiny_clip).num_kept(10) == 5
    with pytest.raises(ValueError, match='top_k=5 is out of range for 3'):
        TVP(tiny_clip, keep='topk', top_k=5)(g, frozen)
    for bad in (dict(keep='all'), dict(rho=0), dict(rho=1.5),
                dict(k_max=0)):
        with pytest.raises(ValueError, match='TVP: '):
            TVP(tiny_clip, **bad)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match='top_k'):
            TVP(tiny_clip, top_k=bad)
    with pytest.raises(ValueError, match='tau'):
        TVP(tiny_clip, tau=0)
    with pytest.raises(ValueError, match='text_source'):
        TVP(tiny_clip, text_source='g')
    assert TVP(tiny_clip, text_source='anchors').needs == Needs(
        frozen_image=True, anchors=True)
    assert TVP(tiny_clip).needs == Needs(frozen_image=True)
    with pytest.raises(ValueError, match='needs the class anchors'):
        TVP(tiny_clip, text_source='anchors')(g, frozen)
    with pytest.raises(ValueError, match='exceeds'):
        TVP(tiny_clip, depth=5, depth_overflow='error')


def test_tvp_deep_prompts_have_their_own_projections(tiny_clip, frozen):
    tvp = TVP(tiny_clip, depth=2)
    vp = tvp(_tvp_inputs(tiny_clip), frozen)
    assert len(tvp.projections) == 2 and len(vp.deep_prompts) == 1
    assert vp.deep_prompts[0].shape == vp.prompts.shape
    assert not torch.allclose(vp.deep_prompts[0], vp.prompts)
    assert TVP(tiny_clip).__call__(_tvp_inputs(tiny_clip),
                                   frozen).deep_prompts is None


# ------------------------------------------------------- the two together
def _ftp_reference(ftp, f0):
    """Per image, per component (Python loops): (M, Dt)."""
    u = ftp.basis.weight
    blocks = torch.arange(u.shape[0]).tensor_split(ftp.n_ctx)
    h = ftp.heads
    out = []
    for m, cols in enumerate(blocks):
        part = u[:, cols] @ (u[:, cols].t() @ f0) / f0.norm()
        out.append(h.weight2[m] @ F.relu(h.weight1[m] @ part + h.bias1[m])
                   + h.bias2[m])
    return torch.stack(out)


def _tvp_reference(tvp, g, f0):
    """Per image, per class, per head (Python loops): (Mv, Dv)."""
    t = F.normalize(g, dim=-1)  # (C, D)
    scores = [tvp.scale * float(F.normalize(f0, dim=0) @ t[c])
              for c in range(t.shape[0])]
    p = torch.softmax(torch.tensor(scores), 0)
    order = sorted(range(len(scores)), key=lambda c: -scores[c])
    kept, mass = [], 0.0
    for c in order:  # the smallest top set reaching rho, at most k_max
        if mass >= tvp.rho or len(kept) == tvp.k_max:
            break
        kept.append(c)
        mass += float(p[c])
    centred = t - t.mean(0)
    logp = torch.log_softmax(torch.tensor([scores[c] for c in kept]), 0)
    attn = tvp.attention
    q = attn.q_proj(F.normalize(tvp.queries, dim=-1))  # (Mv, D)
    k = attn.k_proj(F.normalize(centred[kept], dim=-1))  # (k, D)
    v = attn.v_proj(centred[kept])
    d = q.shape[1] // attn.num_heads
    heads = []
    for i in range(attn.num_heads):
        s = slice(i * d, (i + 1) * d)
        w = torch.softmax(q[:, s] @ k[:, s].t() * attn.score_scale + logp,
                          dim=-1)
        heads.append(w @ v[:, s])
    r = attn.out_proj(torch.cat(heads, dim=1))
    return tvp.projections[0](r), len(kept)


@torch.no_grad()
def test_batched_equals_per_image_reference(images):
    model = build(text_chunk_size=4)
    randomize(model.text_prompt)
    randomize(model.visual_prompt, std=0.1)
    model.eval()
    logits = model(images)
    clip, ftp, tvp = model.clip, model.text_prompt, model.visual_prompt
    tokens = build_class_tokens(clip, CLASSES, 4)
    for i in range(images.shape[0]):  # per image
        f0 = clip.encode_image(images[i:i + 1])[0].float()
        ctx = ftp.ctx + _ftp_reference(ftp, f0)
        prompts = torch.cat([
            tokens.prefix, ctx.expand(len(CLASSES), -1, -1), tokens.suffix
        ], dim=1)
        g = clip.encode_text(prompts, tokens.eot_index).float()
        vp, n_kept = _tvp_reference(tvp, g, f0)
        assert 1 < n_kept < len(CLASSES)  # the mass rule takes part
        f = clip.encode_image(images[i:i + 1], vp.unsqueeze(0))[0].float()
        expected = clip.logit_scale * (F.normalize(g, dim=-1) @
                                       F.normalize(f, dim=0))
        torch.testing.assert_close(logits[i], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize('text_prompt, visual_prompt', [
    (FTP_CFG, TVP_CFG),
    (dict(type='FTP', decomposition='queries', class_gating=True,
          diversity_weight=0.1), dict(type='TVP', depth=2,
                                      weighting='values')),
    (COOP, dict(type='TVP', text_source='anchors')),
])
def test_gradients_reach_every_parameter_and_nothing_frozen(
        images, text_prompt, visual_prompt):
    model = build(text_prompt, visual_prompt)
    if text_prompt.get('class_gating'):
        randomize(model.text_prompt.gate, std=0.1)
    model.train()
    losses = model.loss(images, samples([0, 3, 5]))
    sum(losses.values()).backward()
    trainable = dict(model.named_parameters())
    assert any(n.startswith('visual_prompt.') for n in trainable)
    assert_only_prompts_get_gradients(model)


def test_ftp_tvp_training_decreases_loss():
    model = build()
    model.train()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 224, 224, generator=g)
    data = samples([0, 1, 2, 4])
    history = train_losses(model, x, data, steps=8, lr=0.03)
    assert all(b < a for a, b in zip(history, history[1:])), history
    assert history[-1] < 0.9 * history[0], history


@torch.no_grad()
@pytest.mark.parametrize('text_prompt', [COOP, COCOOP, FTP_CFG])
def test_tvp_combines_with_text_modules_and_class_sets(images, text_prompt):
    model = build(text_prompt, dict(type='TVP'))
    model.eval()
    assert model(images).shape == (3, len(CLASSES))
    model.set_classes(['dog', 'cat'])  # k = min(5, 2)
    assert model(images).shape == (3, 2)


@torch.no_grad()
def test_tft_after_tvp_reads_the_prompted_value_path(images):
    """With visual prompts, TFT's dense features are the value path of the
    prompted image pass (not of the frozen one)."""
    model = build(COOP, TVP_CFG, feature_tuner=dict(type='TFT'))
    model.feature_tuner.gate.fill_(0.0)  # gamma 0.5: the tokens matter
    model.eval()
    logits = model(images)
    clip = model.clip
    prompts = model.text_prompt(model._current_class_set().tokens)
    g = model.encode_prompts(prompts)
    frozen = model.frozen_image_pass(images, with_tokens=False)
    vp = model.visual_prompt(g, frozen).prompts
    f, _, values = clip.encode_image_dense(images, vp)
    h = model.feature_tuner(f.float(), g, values.float())
    expected = clip.logit_scale * (F.normalize(h, dim=-1) *
                                   F.normalize(g, dim=-1)).sum(-1)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)
    frozen_v = clip.encode_image_dense(images)[2]
    wrong = model.feature_tuner(f.float(), g, frozen_v.float())
    assert not torch.allclose(wrong, h, atol=1e-4)
