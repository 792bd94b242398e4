"""Tests of task-oriented mutual learning (reconstruction): the class-aware
text prompt CTP, the text-guided feature tuner TFT and the alignment loss,
alone and inside PromptCLIPClassifier, against per-image / per-class Python
references (tiny random CLIP, CPU)."""

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from mmpl.clip import build_class_tokens
from mmpl.losses import AlignmentLoss
from mmpl.prompts import CTP, TFT, CoCoOp, FrozenImageFeatures
from mmpl.prompts.ctp import QueryTokenAttention
from mmpl.structures import Needs, PromptCLIPOutputs
from helpers import (assert_only_prompts_get_gradients, build_classifier,
                     randomize, samples, train_losses)

CLASSES5 = ['Forest', 'Sea_or_Lake', 'Annual Crop Land', 'River', 'Highway']
CLASSES3 = ['dog', 'cat', 'red fox']
TINY = dict(arch='mmpl-tiny-vit')
COOP = dict(type='CoOp', n_ctx=4, ctx_init='a photo of a')
COCOOP = dict(type='CoCoOp', n_ctx=4, ctx_init='a photo of a')
CTP_CFG = dict(type='CTP')
TFT_CFG = dict(type='TFT')


def build(text_prompt=CTP_CFG, feature_tuner=TFT_CFG, classnames=CLASSES5,
          **kwargs):
    return build_classifier(text_prompt, classnames,
                            feature_tuner=feature_tuner, **kwargs)


@pytest.fixture(scope='module')
def frozen(tiny_clip, images):
    """The frozen pass over ``images`` with both dense readouts."""
    with torch.no_grad():
        f0, z0, v0 = tiny_clip.encode_image_dense(images)
    return FrozenImageFeatures(f0.float(), z0.float(), v0.float())


def anchors_for(clip, classnames):
    with torch.no_grad():
        return clip.encode_token_ids(clip.tokenize(
            [f"a photo of a {n.replace('_', ' ')}." for n in classnames]
        )).float()


# --------------------------------------------------------------- registry
def test_registered(tiny_clip):
    for name in ('CTP', 'TFT', 'AlignmentLoss'):
        assert MODELS.get(name) is not None, name
    assert CTP(tiny_clip).needs == Needs(frozen_image=True,
                                         value_tokens=True, anchors=True)
    assert CTP(tiny_clip, dense='tokens').needs == Needs(
        frozen_image=True, image_tokens=True, anchors=True)
    assert TFT(tiny_clip).needs == Needs(value_tokens=True)
    assert TFT(tiny_clip, dense='tokens').needs == Needs(image_tokens=True)
    assert AlignmentLoss().loss_name == 'loss_align'


# ----------------------------------------------------------------- shapes
@pytest.mark.parametrize('batch,classes,n_ctx', [(1, 3, 4), (3, 5, 2),
                                                 (2, 5, 6)])
def test_shapes(tiny_clip, frozen, batch, classes, n_ctx):
    names = CLASSES5[:classes]
    torch.manual_seed(0)
    ctp = CTP(tiny_clip, n_ctx=n_ctx, ctx_init=None, class_chunk_size=2)
    tft = TFT(tiny_clip)
    tokens = build_class_tokens(tiny_clip, names, n_ctx)
    image = FrozenImageFeatures(frozen.global_feature[:batch],
                                frozen.tokens[:batch], frozen.values[:batch])
    anchors = anchors_for(tiny_clip, names)
    d, dt = tiny_clip.embed_dim, tiny_clip.text_width
    u = ctp.class_image_features(image, anchors)
    assert u.shape == (batch, classes, d)
    assert ctp.shift(u).shape == (batch, classes, dt)
    prompts = ctp(tokens, image, anchors)
    length = tokens.embeddings.shape[1]
    assert prompts.embeddings.shape == (batch, classes, length, dt)
    assert torch.equal(prompts.eot_index, tokens.eot_index)
    # the frozen tokens around the context are untouched
    assert torch.equal(prompts.embeddings[:, :, :1],
                       tokens.prefix.expand(batch, -1, -1, -1))
    assert torch.equal(prompts.embeddings[:, :, 1 + n_ctx:],
                       tokens.suffix.expand(batch, -1, -1, -1))
    for g in (torch.randn(1, classes, d), torch.randn(batch, classes, d)):
        h = tft(image.global_feature, g, image.values)
        assert h.shape == (batch, classes, d)
    tft.class_agnostic = True
    assert tft(image.global_feature, g, image.values).shape == (batch, d)


@pytest.mark.parametrize('feature_tuner', [TFT_CFG, dict(TFT_CFG,
                                                         class_agnostic=True)])
def test_classifier_shapes(images, feature_tuner):
    model = build(feature_tuner=feature_tuner)
    out = model.forward_features(images)
    b, c, d = 3, len(CLASSES5), model.clip.embed_dim
    assert out.logits.shape == (b, c)
    assert out.text_features.shape == (b, c, d)
    expected = (b, d) if feature_tuner.get('class_agnostic') else (b, c, d)
    assert out.image_features.shape == expected
    assert out.anchors.shape == (c, d)


# ------------------------------------------------------------------- CTP
def test_ctp_gives_each_class_its_own_shift(tiny_clip, frozen):
    torch.manual_seed(0)
    ctp = CTP(tiny_clip)
    cocoop = CoCoOp(tiny_clip)
    anchors = anchors_for(tiny_clip, CLASSES5)
    # at init the pooling is CLIP's patch-text similarity at the logit
    # scale: far from uniform, so the class-image features differ
    u = ctp.class_image_features(frozen, anchors)  # (B, C, D)
    assert ((u[:, :1] - u[:, 1:]).norm(dim=-1) >
            0.05 * u[:, 1:].norm(dim=-1)).all()
    randomize(ctp)  # as after training (the tiny meta-net has 4 ReLUs)
    shift = ctp.shift(ctp.class_image_features(frozen, anchors))  # (B,C,Dt)
    for b in range(shift.shape[0]):
        for c in range(1, shift.shape[1]):
            assert not torch.allclose(shift[b, 0], shift[b, c], atol=1e-3)
    # different images of the same class differ too
    assert not torch.allclose(shift[0], shift[1], atol=1e-4)
    # CoCoOp: one shift per image, the same for every class
    tokens = build_class_tokens(tiny_clip, CLASSES5, 4)
    prompts = cocoop(tokens, frozen).embeddings[:, :, 1:5]
    assert torch.equal(prompts, prompts[:, :1].expand_as(prompts))
    ctp_prompts = ctp(tokens, frozen, anchors).embeddings[:, :, 1:5]
    assert not torch.allclose(ctp_prompts[:, 0], ctp_prompts[:, 1])


@torch.no_grad()
def test_ctp_equals_cocoop_when_attention_returns_global_feature(
        tiny_clip, frozen):
    """attend_over='global' + project_values=False: one key whose value is
    f0 itself, so u_{b,c} = f0_b and the prompts are CoCoOp's, bit for bit."""
    torch.manual_seed(0)
    cocoop = CoCoOp(tiny_clip)
    randomize(cocoop.meta_net)
    ctp = CTP(tiny_clip, attend_over='global')
    # f0 is always computed, the tokens are not needed
    assert ctp.needs == Needs(frozen_image=True, anchors=True)
    missing, unexpected = ctp.load_state_dict(cocoop.state_dict(),
                                              strict=False)
    assert not unexpected
    assert all(k.startswith('attention.') for k in missing)
    anchors = anchors_for(tiny_clip, CLASSES5)
    image = FrozenImageFeatures(frozen.global_feature)  # no tokens needed
    assert torch.equal(ctp.class_image_features(image, anchors),
                       frozen.global_feature.unsqueeze(1).expand(-1, 5, -1))
    tokens = build_class_tokens(tiny_clip, CLASSES5, 4)
    assert torch.equal(ctp(tokens, image, anchors).embeddings,
                       cocoop(tokens, image).embeddings)


@torch.no_grad()
def test_ctp_global_in_classifier_equals_cocoop(images):
    cocoop = build(COCOOP, None)
    randomize(cocoop.text_prompt.meta_net)
    ctp = build(dict(type='CTP', attend_over='global'), None)
    ctp.load_state_dict(cocoop.state_dict(), strict=False)
    cocoop.eval()
    ctp.eval()
    # the prompts are bit-equal (test above); the encoders may reassociate
    torch.testing.assert_close(ctp(images), cocoop(images), atol=1e-5,
                               rtol=0)


def _mha_reference(attention, dim, num_heads):
    """nn.MultiheadAttention with the weights of a QueryTokenAttention."""
    mha = torch.nn.MultiheadAttention(dim, num_heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([
            attention.q_proj.weight, attention.k_proj.weight,
            attention.v_proj.weight]))
        mha.in_proj_bias.copy_(torch.cat([
            attention.q_proj.bias, attention.k_proj.bias,
            attention.v_proj.bias]))
        mha.out_proj.weight.copy_(attention.out_proj.weight)
        mha.out_proj.bias.copy_(attention.out_proj.bias)
    return mha


@torch.no_grad()
@pytest.mark.parametrize('chunk', [None, 1, 2, 7])
@pytest.mark.parametrize('shared_queries', [True, False])
def test_query_token_attention_is_multihead_attention(chunk, shared_queries):
    torch.manual_seed(0)
    dim, heads, b, c, k = 16, 4, 3, 5, 6
    attn = QueryTokenAttention(dim, heads, normalize_inputs=False,
                               class_chunk_size=chunk)
    queries = torch.randn(1 if shared_queries else b, c, dim)
    tokens = torch.randn(b, k, dim)
    mha = _mha_reference(attn, dim, heads)
    expected = mha(queries.expand(b, -1, -1), tokens, tokens,
                   need_weights=False)[0]
    torch.testing.assert_close(attn(queries, tokens), expected, atol=1e-6,
                               rtol=1e-5)


def test_attention_heads_must_divide_width(tiny_clip):
    with pytest.raises(ValueError, match='num_heads=3 must divide'):
        CTP(tiny_clip, pooling='attention', num_heads=3)
    with pytest.raises(ValueError, match='attend_over must be one of'):
        TFT(tiny_clip, attend_over='global')
    with pytest.raises(ValueError, match='class_chunk_size'):
        CTP(tiny_clip, pooling='attention', class_chunk_size=0)
    for bad in (dict(dense='cls'), dict(pooling='mean')):
        with pytest.raises(ValueError, match='must be one of'):
            CTP(tiny_clip, **bad)
    for bad in (dict(dense='cls'), dict(query='none'),
                dict(gamma_init=1.0), dict(temperature=0)):
        with pytest.raises(ValueError, match='TFT: '):
            TFT(tiny_clip, **bad)


# ------------------------------------------------------------------- TFT
@torch.no_grad()
@pytest.mark.parametrize('text_prompt', [COOP, COCOOP, CTP_CFG])
@pytest.mark.parametrize('class_agnostic', [False, True])
def test_tft_with_gamma_zero_reproduces_untuned_logits(images, text_prompt,
                                                       class_agnostic):
    plain = build(text_prompt, None)
    tuned = build(text_prompt, dict(TFT_CFG, gamma_init=0.0,
                                    class_agnostic=class_agnostic))
    randomize(tuned.feature_tuner.pooling)  # gamma = 0 must still cancel
    for model in (plain, tuned):
        model.eval()
    torch.testing.assert_close(tuned(images), plain(images), atol=1e-5,
                               rtol=0)
    tuned.feature_tuner.gate.fill_(0.0)  # gamma = 0.5
    assert not torch.allclose(tuned(images), plain(images), atol=1e-3)


def test_tft_needs_tokens(tiny_clip):
    tft = TFT(tiny_clip)
    with pytest.raises(ValueError, match='TFT needs the image tokens'):
        tft(torch.randn(2, 64), torch.randn(1, 3, 64), None)


# --------------------------------------------- batched == per-image reference
def _pool_reference(scale, query, tokens):
    """One query (D,) pools one image's (N, D) tokens by cosine softmax,
    token by token."""
    sims = torch.stack([F.cosine_similarity(query, t, dim=0)
                        for t in tokens])
    w = torch.softmax(scale * sims, dim=0)
    return sum(w[n] * tokens[n] for n in range(tokens.shape[0]))


@torch.no_grad()
@pytest.mark.parametrize('text_chunk', [None, 4])
def test_batched_equals_per_image_reference(images, text_chunk):
    model = build(text_chunk_size=text_chunk)
    randomize(model.text_prompt.meta_net)
    model.feature_tuner.gate.fill_(0.3)
    model.eval()
    logits = model(images)
    clip, ctp, tft = model.clip, model.text_prompt, model.feature_tuner
    tokens = build_class_tokens(clip, CLASSES5, 4)
    anchors = anchors_for(clip, CLASSES5)
    scale = clip.logit_scale
    gamma = torch.sigmoid(torch.tensor(0.3))
    for i in range(images.shape[0]):  # per image ...
        f0, _, v0 = clip.encode_image_dense(images[i:i + 1])
        f0, patches = f0[0].float(), v0[0, 1:].float()  # value path
        prompts, tuned = [], []
        for c in range(len(CLASSES5)):  # ... and per class
            u = _pool_reference(ctp.attention.scale, anchors[c], patches)
            ctx = ctp.ctx + ctp.meta_net(F.normalize(u, dim=-1))
            prompts.append(torch.cat([tokens.prefix[c], ctx,
                                      tokens.suffix[c]]))
        g = clip.encode_text(torch.stack(prompts), tokens.eot_index).float()
        for c in range(len(CLASSES5)):
            tuned.append((1 - gamma) * f0 + gamma * _pool_reference(
                tft.pooling.scale, g[c], patches))
        h = torch.stack(tuned)
        expected = scale * (F.normalize(h, dim=-1) *
                            F.normalize(g, dim=-1)).sum(-1)
        torch.testing.assert_close(logits[i], expected, atol=1e-5, rtol=0)


# ------------------------------------------------------------- gradients
@pytest.mark.parametrize('feature_tuner', [TFT_CFG, dict(TFT_CFG,
                                                         class_agnostic=True)])
def test_gradients_reach_every_parameter_and_nothing_frozen(images,
                                                            feature_tuner):
    model = build(feature_tuner=feature_tuner, extra_losses=[dict(
        type='AlignmentLoss', text_to_image_weight=1.0)])
    model.train()
    losses = model.loss(images, samples([0, 3, 0]))
    assert set(losses) == {'loss_cls', 'loss_align'}
    sum(losses.values()).backward()
    trainable = dict(model.named_parameters())
    names = set(trainable)
    assert any(n.startswith('text_prompt.attention.') for n in names)
    assert 'feature_tuner.gate' in names
    assert_only_prompts_get_gradients(model)


# -------------------------------------------------------------- training
def test_ctp_tft_training_decreases_loss():
    model = build(extra_losses=[dict(type='AlignmentLoss',
                                     image_to_text_weight=0.0,
                                     text_to_image_weight=1.0)])
    model.train()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 224, 224, generator=g)
    data = samples([0, 1, 2, 4])
    history = train_losses(model, x, data, steps=12, lr=0.1)
    assert all(b < a for a, b in zip(history, history[1:])), history
    assert history[-1] < 0.9 * history[0], history


# ---------------------------------------------------------- combinations
def test_tokens_on_a_non_vit_tower_fail_at_build():
    with pytest.raises(ValueError) as exc:
        MODELS.build(dict(type='PromptCLIPClassifier',
                          clip=dict(arch='RN50'), text_prompt=CTP_CFG,
                          feature_tuner=TFT_CFG, classnames=CLASSES3))
    msg = str(exc.value)
    assert '\n' not in msg
    assert 'CTP, TFT need image tokens' in msg and 'RN50' in msg


def test_ctp_needs_its_inputs(tiny_clip, frozen):
    ctp = CTP(tiny_clip)
    tokens = build_class_tokens(tiny_clip, CLASSES3, 4)
    with pytest.raises(ValueError, match='needs the frozen image'):
        ctp(tokens, frozen, None)
    with pytest.raises(ValueError, match='5 anchors for 3 classes'):
        ctp(tokens, frozen, anchors_for(tiny_clip, CLASSES5))
    with pytest.raises(ValueError, match='needs the image tokens'):
        ctp(tokens, FrozenImageFeatures(frozen.global_feature),
            anchors_for(tiny_clip, CLASSES3))


# ------------------------------------------------------------- alignment
def _outputs(logits):
    return PromptCLIPOutputs(logits=logits, image_features=None,
                             text_features=None, logit_scale=None)


def test_alignment_loss_terms():
    torch.manual_seed(0)
    logits = torch.randn(4, 6)
    labels = torch.tensor([1, 5, 1, 0])
    ce = F.cross_entropy(logits, labels)
    assert torch.equal(AlignmentLoss(text_to_image_weight=0.0)(
        _outputs(logits), labels), ce)
    # text-to-image, diagonal: text of image b's class vs every image b'
    diag = AlignmentLoss(0.0, 1.0, positives='diagonal')(_outputs(logits),
                                                         labels)
    ref = []
    for b in range(4):
        scores = torch.stack([logits[j, labels[b]] for j in range(4)])
        ref.append(-torch.log_softmax(scores, 0)[b])
    torch.testing.assert_close(diag, torch.stack(ref).mean())
    # same label: images 0 and 2 (class 1) are both positives of texts 0, 2
    same = AlignmentLoss(0.0, 1.0)(_outputs(logits), labels)
    ref = []
    for b in range(4):
        scores = torch.stack([logits[j, labels[b]] for j in range(4)])
        pos = [j for j in range(4) if labels[j] == labels[b]]
        ref.append(-torch.log_softmax(scores, 0)[pos].mean())
    torch.testing.assert_close(same, torch.stack(ref).mean())
    both = AlignmentLoss(0.5, 2.0)(_outputs(logits), labels)
    torch.testing.assert_close(both, 0.5 * ce + 2.0 * same)
    # the default is the symmetric loss (second reading)
    torch.testing.assert_close(AlignmentLoss()(_outputs(logits), labels),
                               ce + same)
    with pytest.raises(ValueError, match='positives must be one of'):
        AlignmentLoss(positives='all')


# ------------------------------------------------------- dense readouts
@torch.no_grad()
def test_encode_dense_readouts(tiny_clip, images):
    """The value path (MaskCLIP): ln_1 -> v -> out_proj of the last
    block's input, then ln_post and proj, token by token; the pooled feature
    and the final tokens are encode_image's."""
    f, z = tiny_clip.encode_image(images, return_tokens=True)
    f2, z2, v = tiny_clip.encode_image_dense(images)
    torch.testing.assert_close(f2, f)
    torch.testing.assert_close(z2, z)
    tower = tiny_clip.visual
    inputs = {}
    handle = tower.blocks[-1].register_forward_pre_hook(
        lambda m, args: inputs.__setitem__('x', args[0]))
    tiny_clip.encode_image(images)
    handle.remove()
    block, visual = tower.blocks[-1], tower.visual
    width = tower.width
    for n in (0, 5):  # one token at a time
        x = block.ln_1(inputs['x'][:, n])
        x = x @ block.attn.in_proj_weight[2 * width:].t() + \
            block.attn.in_proj_bias[2 * width:]
        x = visual.ln_post(block.attn.out_proj(x)) @ visual.proj
        torch.testing.assert_close(v[:, n], x)
    # with visual prompts: the prompt tokens are dropped from the readout
    prompts = torch.randn(2, tower.width)
    f3, z3, v3 = tiny_clip.encode_image_dense(images, prompts)
    f4, z4 = tiny_clip.encode_image(images, prompts, return_tokens=True)
    torch.testing.assert_close(f3, f4)
    torch.testing.assert_close(z3, z4)
    assert v3.shape == v.shape and not torch.allclose(v3, v)
