"""The retention module (PromptSRC's three terms): each term's *value*
against a hand computation (weights 25 / 10 / 1, L1 of the normalised
features per class, KL(p_zero-shot || p)), the template-ensemble anchors
(open_clip's OpenAI ImageNet templates) and the end-to-end loss values on
the shipped tiny CLIP."""
import math

import open_clip
import pytest
import torch

from mmpl.losses import (ImageRetentionLoss, LogitRetentionLoss,
                         TextRetentionLoss)
from mmpl.models import cosine_logits
from mmpl.models.class_set import TEMPLATE_ENSEMBLES
from mmpl.prompts import FrozenImageFeatures
from mmpl.structures import PromptCLIPOutputs
from mmpl.utils.errors import ConfigError
from helpers import build_classifier, samples, shapes_classifier

CLASSES = ['cat', 'dog', 'sea lion', 'red panda', 'airliner']
OTHER_CLASSES = ['tulip', 'rose', 'daisy']


def _outputs(f, g, f0, t0, scale=torch.tensor(100.)):
    return PromptCLIPOutputs(logits=cosine_logits(f, g, scale),
                             image_features=f, text_features=g,
                             logit_scale=scale,
                             frozen_image=FrozenImageFeatures(f0),
                             anchors=t0)


def _unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


# ------------------------------------------------------------ hand formulas
def hand_text(g, t0, weight=25.0):
    """weight * mean over b, c, d of |g_bc/|g_bc| - t0_c/|t0_c||: one term
    per class (and image), plain Python."""
    total, count = 0.0, 0
    for g_b in g.tolist():
        for g_bc, t_c in zip(g_b, t0.tolist()):
            for x, y in zip(_unit(g_bc), _unit(t_c)):
                total += abs(x - y)
                count += 1
    return weight * total / count


def hand_image(f, f0, weight=10.0):
    total, count = 0.0, 0
    for f_b, f0_b in zip(f.tolist(), f0.tolist()):
        for x, y in zip(_unit(f_b), _unit(f0_b)):
            total += abs(x - y)
            count += 1
    return weight * total / count


def _softmax(z):
    m = max(z)
    e = [math.exp(x - m) for x in z]
    return [x / sum(e) for x in e]


def hand_kl(logits, f0, t0, scale, weight=1.0):
    """weight * sum_b sum_c p_zs log(p_zs / p) / (B*C): the frozen zero-shot
    prediction p_zs = softmax(scale * cos(f0_b, t0_c)) is the target."""
    total = 0.0
    for z_b, f0_b in zip(logits.tolist(), f0.tolist()):
        zs = [scale * sum(a * b for a, b in zip(_unit(f0_b), _unit(t)))
              for t in t0.tolist()]
        p_zs, p = _softmax(zs), _softmax(z_b)
        total += sum(q * math.log(q / r) for q, r in zip(p_zs, p))
    return weight * total / logits.numel()


@pytest.fixture(scope='module')
def moved():
    """Prompted features away from the frozen ones, with norms far from 1
    (so a missing normalisation shows), per-image text features (B, C, D)
    whose class means differ from the per-class terms."""
    g = torch.Generator().manual_seed(0)
    f0 = 3 * torch.randn(3, 6, generator=g)
    t0 = 0.2 * torch.randn(4, 6, generator=g)
    f = 2 * (f0 + torch.randn(3, 6, generator=g))
    text = 5 * (t0 + 0.3 * torch.randn(3, 4, 6, generator=g))
    return f, text, f0, t0


def test_default_weights_are_promptsrc():
    assert TextRetentionLoss().loss_weight == 25.0
    assert ImageRetentionLoss().loss_weight == 10.0
    assert LogitRetentionLoss().loss_weight == 1.0


def test_text_term_value_per_class(moved):
    f, g, f0, t0 = moved
    out = _outputs(f, g, f0, t0)
    value = TextRetentionLoss()(out, None).item()
    assert value == pytest.approx(hand_text(g, t0), rel=1e-5)
    # not the class-mean feature's distance (a different number here)
    mean_only = hand_text(g.mean(1, keepdim=True), t0.mean(0, keepdim=True))
    assert abs(value - mean_only) > 1e-3 * value
    # shared (1, C, D) text features: one term per class
    shared = _outputs(f, g[:1], f0, t0)
    assert TextRetentionLoss()(shared, None).item() == pytest.approx(
        hand_text(g[:1], t0), rel=1e-5)
    # KgCoOp's reading: 8 * mean_c (1 - cos)
    cos = torch.nn.functional.cosine_similarity(g, t0[None], dim=-1)
    assert TextRetentionLoss(8.0, 'cosine')(out, None).item() == \
        pytest.approx(8 * (1 - cos).mean().item(), rel=1e-5)


def test_image_term_value(moved):
    f, g, f0, t0 = moved
    value = ImageRetentionLoss()(_outputs(f, g, f0, t0), None).item()
    assert value == pytest.approx(hand_image(f, f0), rel=1e-5)
    # the features are compared normalised (unnormalised L1 is far larger)
    assert (f - f0).abs().mean().item() * 10 > 2 * value


def test_logit_term_value_and_direction(moved):
    f, g, f0, t0 = moved
    scale = 10.0
    out = _outputs(f, g, f0, t0, torch.tensor(scale))
    value = LogitRetentionLoss()(out, None).item()
    assert value == pytest.approx(hand_kl(out.logits, f0, t0, scale),
                                  rel=1e-5)
    # KL(p || p_zs), the other direction, is a different number here
    zs = cosine_logits(f0, t0[None], torch.tensor(scale))
    p, p_zs = out.logits.softmax(1), zs.softmax(1)
    reverse = (p * (p.log() - p_zs.log())).sum().item() / out.logits.numel()
    assert abs(value - reverse) > 0.05 * value
    # temperature T: T^2 * KL of the softened distributions, per image
    soft = LogitRetentionLoss(temperature=2.0, reduction='batchmean')
    assert soft(out, None).item() == pytest.approx(
        4 * hand_kl(out.logits / 2, f0, t0, scale / 2) * out.logits.shape[1],
        rel=1e-5)


LOSSES = [TextRetentionLoss(), TextRetentionLoss(8.0, 'cosine'),
          ImageRetentionLoss(), LogitRetentionLoss(),
          LogitRetentionLoss(reduction='batchmean', temperature=2.0)]


@pytest.mark.parametrize('loss', LOSSES, ids=lambda m: repr(m.__dict__.get(
    'distance', type(m).__name__)))
def test_retention_zero_iff_frozen(loss):
    g = torch.Generator().manual_seed(0)
    f0, t0 = torch.randn(3, 16, generator=g), torch.randn(5, 16, generator=g)
    labels = torch.tensor([0, 1, 2])
    same = _outputs(f0.clone(), t0.clone()[None], f0, t0)
    assert loss(same, labels).item() == 0.0
    # image-conditioned text features (B, C, D) equal to the anchors
    same_b = _outputs(f0.clone(), t0[None].repeat(3, 1, 1), f0, t0)
    if not isinstance(loss, LogitRetentionLoss):
        assert loss(same_b, labels).item() == 0.0
    moved = _outputs(f0 + 0.3 * torch.randn(3, 16, generator=g),
                     (t0 + 0.3 * torch.randn(5, 16, generator=g))[None],
                     f0, t0)
    assert loss(moved, labels).item() > 0.0


def test_retention_reads_per_class_image_features():
    f0, t0 = torch.randn(2, 8), torch.randn(3, 8)
    out = _outputs(f0[:, None].repeat(1, 3, 1), t0[None], f0, t0)
    assert ImageRetentionLoss()(out, None).item() == 0.0
    assert LogitRetentionLoss()(out, None).item() == pytest.approx(0, abs=1e-6)


def test_retention_zero_at_init_when_prompts_reproduce_clip(tiny_images):
    """CoOp initialised from the anchor template reproduces frozen CLIP:
    every retention term is zero, end to end (up to float rounding: the
    prompts' text pass runs the shared [SOS] ctx prefix once, the anchors'
    pass whole sequences; both are exact in real arithmetic)."""
    clf = build_classifier(
        dict(type='CoOp', n_ctx=4, ctx_init='a photo of a'), CLASSES,
        extra_losses=[dict(type='TextRetentionLoss'),
                      dict(type='TextRetentionLoss', distance='cosine',
                           loss_name='loss_cos'),
                      dict(type='ImageRetentionLoss'),
                      dict(type='LogitRetentionLoss')],
        template='a photo of a {}.')
    clf.train()
    losses = clf.loss(tiny_images, samples([0, 1]))
    for name in ('loss_text_retention', 'loss_cos', 'loss_image_retention',
                 'loss_logit_retention'):
        assert abs(losses[name].item()) < 1e-5, name


def test_anchors_encoded_once_per_class_set(tiny_images):
    clf = build_classifier(dict(type='DGPrompt', depth=2), CLASSES,
                           extra_losses=[dict(type='TextRetentionLoss'),
                                         dict(type='LogitRetentionLoss')])
    calls = []
    encode = clf.clip.encode_token_ids
    clf.clip.encode_token_ids = lambda *a, **k: calls.append(1) or encode(
        *a, **k)
    clf.train()
    for _ in range(3):
        clf.loss(tiny_images, samples([0, 4]))
    assert len(calls) == 1
    clf.set_classes(OTHER_CLASSES)
    clf.loss(tiny_images, samples([0, 2]))
    clf.eval()
    with torch.no_grad():
        clf.predict(tiny_images)
    assert len(calls) == 2
    clf.set_classes(CLASSES)
    clf.train()
    clf.loss(tiny_images, samples([1, 2]))
    assert len(calls) == 2


# ------------------------------------------------------------------ anchors
def test_ensemble_anchors_are_openai_imagenet_templates():
    """anchor_templates='openai_imagenet': t0_c = the unit mean over
    open_clip's 80 OpenAI templates of the normalised frozen features."""
    assert TEMPLATE_ENSEMBLES['openai_imagenet'] is \
        open_clip.OPENAI_IMAGENET_TEMPLATES
    names = ['red triangle', 'blue circle', 'green square']
    clf = shapes_classifier(dict(type='CoOp', n_ctx=4), names,
                           anchor_templates='openai_imagenet')
    anchors = clf.class_anchors()
    clip = clf.clip
    with torch.no_grad():
        for c, name in enumerate(names):
            texts = [t(name) for t in open_clip.OPENAI_IMAGENET_TEMPLATES]
            assert len(texts) == 80
            feats = torch.nn.functional.normalize(
                clip.encode_token_ids(clip.tokenize(texts)).float(), dim=-1)
            expect = torch.nn.functional.normalize(feats.mean(0), dim=0)
            torch.testing.assert_close(anchors[c], expect, atol=1e-5,
                                       rtol=0)
    one = shapes_classifier(dict(type='CoOp', n_ctx=4), names)
    assert not torch.allclose(torch.nn.functional.normalize(
        one.class_anchors(), dim=-1), anchors, atol=1e-3)
    # a list of templates; the cache is per class set
    two = shapes_classifier(dict(type='CoOp', n_ctx=4), names,
                           anchor_templates=['a photo of a {}.',
                                             'a drawing of a {}.'])
    with torch.no_grad():
        feats = [torch.nn.functional.normalize(clip.encode_token_ids(
            clip.tokenize([t.format(n) for n in names])).float(), dim=-1)
            for t in ('a photo of a {}.', 'a drawing of a {}.')]
    torch.testing.assert_close(two.class_anchors(),
                               torch.nn.functional.normalize(
                                   feats[0] + feats[1], dim=-1),
                               atol=1e-5, rtol=0)
    for bad in ('imagenet80', [], ['no slot']):
        with pytest.raises(ConfigError, match='anchor'):
            shapes_classifier(dict(type='CoOp', n_ctx=4), names,
                              anchor_templates=bad)


# --------------------------------------------------------------- end to end
def test_loss_values_on_the_shipped_clip(tiny_images):
    """The classifier's retention losses with DGPrompt on the shipped tiny
    CLIP equal the hand formulas on that forward's features."""
    images = torch.nn.functional.interpolate(tiny_images, size=64)
    clf = shapes_classifier(
        dict(type='DGPrompt', depth=2), ['red triangle', 'blue circle',
                                         'green square', 'yellow star'],
        extra_losses=[dict(type='TextRetentionLoss'),
                      dict(type='ImageRetentionLoss'),
                      dict(type='LogitRetentionLoss')])
    with torch.no_grad():  # visible prompts
        for p in clf.text_prompt.parameters():
            p.add_(0.05 * torch.randn_like(p))
    clf.train()
    with torch.no_grad():
        out = clf.forward_features(images)
        losses = clf.loss(images, samples([0, 2]))
    t0, f0 = out.anchors, out.frozen_image.global_feature
    assert out.text_features.shape[0] == 2  # per image: DGPrompt's guidance
    assert losses['loss_text_retention'].item() == pytest.approx(
        hand_text(out.text_features, t0), rel=1e-4)
    assert losses['loss_image_retention'].item() == pytest.approx(
        hand_image(out.image_features, f0), rel=1e-4)
    assert losses['loss_logit_retention'].item() == pytest.approx(
        hand_kl(out.logits, f0, t0, float(out.logit_scale)), rel=1e-4,
        abs=1e-7)
    assert all(losses[k].item() > 0 for k in losses)
