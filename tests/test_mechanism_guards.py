"""Tests that guard what each paper's mechanism rests on (issue 31): every
gradient is checked against a reference of its direction and size (a hand
chain rule or an exact identity between two models), not only for being
non-zero, and retention's restraint is measured after training. Each test
names the mutation of the code it catches (docs/methods_tomm_mpl.md and
configs/dgprompt/README.md list them)."""
import pytest
import torch
import torch.nn.functional as F

from mmpl.losses import (AlignmentLoss, ImageRetentionLoss, LogitRetentionLoss,
                         TextRetentionLoss)
from mmpl.models import cosine_logits
from mmpl.prompts import FTP, TFT, FrozenImageFeatures
from mmpl.structures import PromptCLIPOutputs
from helpers import (assert_close_to_scale, samples, shapes_classifier,
                     train_losses)
from two_objects import NAMES, anchors, shapes_clip, single_object_batch

#: six classes of the shape world, one image each (labels into CLASSES)
CLASSES = [NAMES[i] for i in (0, 7, 13, 21, 4, 28)]


@pytest.fixture(scope='module')
def clip():
    return shapes_clip()


@pytest.fixture(scope='module')
def shape_images():
    """(6, 3, 64, 64): one clean image of each of CLASSES."""
    return single_object_batch([NAMES.index(n) for n in CLASSES])


def _grads(loss, params):
    return torch.autograd.grad(loss, params, retain_graph=True,
                               allow_unused=True)


# ------------------------------------------------------ alignment (TOMM)
def test_alignment_text_to_image_gradient_reaches_the_text_prompts(
        shape_images):
    """The text-to-image term's gradient on CTP's context equals the chain
    rule through a hand-written dL/dlogits (softmax over the batch's images
    minus the same-label target). Catches: the term computed on detached
    logits (no gradient to the text prompts), positives or the score
    matrix transposed (another direction)."""
    clf = shapes_classifier(dict(type='CTP'), CLASSES, perturb=0.02)
    x = shape_images[[0, 1, 0, 2]]  # label 0 twice: two positives
    labels = torch.tensor([0, 1, 0, 2])
    out = clf.forward_features(x)
    loss = AlignmentLoss(image_to_text_weight=0.0)(out, labels)
    ctx = clf.text_prompt.ctx
    (auto,) = _grads(loss, [ctx])
    # hand: scores[b, b'] = logits[b', y_b], target uniform over same label
    with torch.no_grad():
        scores = out.logits[:, labels].t()
        same = (labels[None] == labels[:, None]).float()
        d_scores = (scores.softmax(1) - same / same.sum(1, keepdim=True)) \
            / len(labels)
        d_logits = torch.zeros_like(out.logits)
        for b, y in enumerate(labels.tolist()):  # reference, 4 images
            d_logits[:, y] += d_scores[b]
    (ref,) = torch.autograd.grad(out.logits, [ctx], d_logits)
    assert ref.abs().max() > 1e-6
    assert_close_to_scale(auto, ref, rel=1e-3)


# ------------------------------------------------ retention (DGPrompt)
def _normalised_l1_grad(x, y, weight, count):
    """d/dx of weight * sum |x^ - y^| / count, rows normalised: the
    projection of sign(x^ - y^) onto x's tangent plane, over |x|."""
    xn, yn = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
    s = torch.sign(xn - yn)
    tangent = s - (s * xn).sum(-1, keepdim=True) * xn
    return weight * tangent / x.norm(dim=-1, keepdim=True) / count


def _moved_outputs(requires_grad=True):
    g = torch.Generator().manual_seed(3)
    f0, t0 = torch.randn(4, 16, generator=g), torch.randn(5, 16, generator=g)
    f = (f0 + 0.5 * torch.randn(4, 16, generator=g)).requires_grad_()
    text = (t0 + 0.5 * torch.randn(5, 16, generator=g))[None] \
        .requires_grad_()
    scale = torch.tensor(20.)
    out = PromptCLIPOutputs(logits=cosine_logits(f, text, scale),
                            image_features=f, text_features=text,
                            logit_scale=scale,
                            frozen_image=FrozenImageFeatures(f0), anchors=t0)
    return out, f0, t0


def test_text_retention_gradient_direction_and_size():
    """Catches: the text features detached, the weight ignored, the L1 of
    unnormalised features."""
    out, _, t0 = _moved_outputs()
    g = out.text_features
    (auto,) = _grads(TextRetentionLoss(25.0)(out, None), [g])
    ref = _normalised_l1_grad(g.detach(), t0[None], 25.0, g.numel())
    assert_close_to_scale(auto, ref, rel=1e-4)


def test_image_retention_gradient_direction_and_size():
    out, f0, _ = _moved_outputs()
    f = out.image_features
    (auto,) = _grads(ImageRetentionLoss(10.0)(out, None), [f])
    ref = _normalised_l1_grad(f.detach(), f0, 10.0, f.numel())
    assert_close_to_scale(auto, ref, rel=1e-4)


def test_logit_retention_gradient_is_prediction_minus_zero_shot():
    """d KL(p_zs || p) / dz = (p - p_zs) / (B*C) times the weight: the
    prompted prediction is pulled toward the frozen zero-shot one. Catches:
    the KL reversed (target and input swapped), the logits detached, the
    weight ignored."""
    out, f0, t0 = _moved_outputs()
    logits = out.logits
    (auto,) = _grads(LogitRetentionLoss(2.0)(out, None), [logits])
    with torch.no_grad():
        p_zs = cosine_logits(f0, t0[None], out.logit_scale).softmax(1)
        ref = 2.0 * (logits.softmax(1) - p_zs) / logits.numel()
    assert ref.abs().max() > 1e-4
    assert_close_to_scale(auto, ref, rel=1e-4)


RETENTION = [dict(type='TextRetentionLoss'), dict(type='ImageRetentionLoss'),
             dict(type='LogitRetentionLoss')]


def _drift(clf, images):
    """Mean 1 - cos of the prompted text features to the anchors plus that
    of the prompted image features to the frozen ones."""
    clf.train()  # the classifier computes f0 and t0 for the losses
    with torch.no_grad():
        out = clf.forward_features(images)
        t0 = clf.class_anchors()
        f0 = out.frozen_image.global_feature
        text = 1 - F.cosine_similarity(out.text_features.float(),
                                       t0[None].float(), dim=-1).mean()
        image = 1 - F.cosine_similarity(out.image_features.float(),
                                        f0.float(), dim=-1).mean()
    return float(text), float(image)


def test_retention_restrains_the_prompts_during_training(shape_images):
    """A measured property, not the formula: the same IVLP prompts trained
    the same 12 steps drift less from frozen CLIP with the retention terms
    than without (text and image features both). Catches: a retention term
    with its sign reversed or its weight ignored, and any term that stops
    passing gradient to the prompts."""
    labels = torch.arange(len(CLASSES))

    def trained(extra_losses):
        # a zero-weight term keeps f0 and t0 computed for the drift
        keep = dict(type='LogitRetentionLoss', loss_weight=0.0,
                    loss_name='zero')
        clf = shapes_classifier(
            dict(type='DGPrompt', depth=3, guidance='none', alpha=0.0),
            CLASSES, extra_losses=extra_losses + [keep])
        train_losses(clf, shape_images, samples(labels), steps=12, lr=0.05)
        return _drift(clf, shape_images)

    free_text, free_image = trained([])
    kept_text, kept_image = trained(RETENTION)
    assert free_text > 1e-3 and free_image > 1e-3  # CE alone moves them
    assert kept_text < 0.7 * free_text, (kept_text, free_text)
    assert kept_image < 0.7 * free_image, (kept_image, free_image)


# ----------------------------------------------- DGPrompt's residual chain
def _generated(clf, images):
    """The J text and J visual prompts DGPrompt generates for ``images``."""
    dg = clf.text_prompt
    if not dg.encodes_jointly:
        return dg.generate()
    joint = dg.encode_jointly(clf.clip, clf._current_class_set().tokens,
                              images)
    return joint.text_prompts, joint.visual_prompts


@pytest.mark.parametrize('guidance', ['none', 'linear'])
def test_dgprompt_residual_carries_gradient_along_the_chain(shape_images,
                                                            guidance):
    """T_l = Tbase_l + G_l + alpha T_{l-1}. Model B has alpha = 0 and its
    base prompts set to model A's generated ones (guidance maps zeroed, so
    every prompt is shared), so both compute the same logits; the chain
    rule then says grad_A(Tbase_{l-1}) = grad_B(Tbase_{l-1}) + alpha *
    grad_A(Tbase_l), for the text and the visual prompts. Catches: the
    previous layer's prompts detached in the residual (either path)."""
    alpha = 0.3
    prompt = dict(type='DGPrompt', depth=3, guidance=guidance)
    a = shapes_classifier(dict(prompt, alpha=alpha), CLASSES, perturb=0.05)
    b = shapes_classifier(dict(prompt, alpha=0.0), CLASSES)
    if guidance != 'none':
        with torch.no_grad():
            for m in list(a.text_prompt.visual_to_text) + list(
                    a.text_prompt.text_to_visual):
                m.mapper.weight.zero_()
                m.mapper.bias.zero_()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        texts, visuals = _generated(a, shape_images)
        dg = b.text_prompt
        for layer in range(1, 3):
            dg.deep_text[layer - 1].copy_(texts[layer].reshape(
                -1, *dg.deep_text[layer - 1].shape)[0])
            dg.visual[layer].copy_(visuals[layer].reshape(
                -1, *dg.visual[layer].shape)[0])
    labels = samples(range(len(CLASSES)))
    loss_a = sum(a.loss(shape_images, labels).values())
    loss_b = sum(b.loss(shape_images, labels).values())
    assert_close_to_scale(loss_b, loss_a, rel=1e-4)

    def chain(clf):
        dg = clf.text_prompt
        return _grads(sum(clf.loss(shape_images, labels).values()),
                      [dg.ctx, *dg.deep_text, *dg.visual])

    ga, gb = chain(a), chain(b)
    text_a, text_b = ga[:3], gb[:3]
    vis_a, vis_b = ga[3:], gb[3:]
    scale = max(float(g.abs().max()) for g in ga)
    for layer in range(2):
        for grads_a, grads_b in ((text_a, text_b), (vis_a, vis_b)):
            through = grads_a[layer] - grads_b[layer]
            assert_close_to_scale(through, alpha * grads_a[layer + 1],
                                  rel=1e-3, scale=scale)
            assert (alpha * grads_a[layer + 1]).abs().max() > 1e-3 * scale


def test_dgprompt_affinity_pooling_weighs_the_class_set(shape_images, clip):
    """pooling='affinity': the text -> image guidance pools the classes'
    states by the frozen zero-shot prediction. With uniform affinities
    (all anchors equal) it is exactly the mean pooling; with the real
    anchors it differs. Catches: the affinity ignored (mean always)."""
    prompt = dict(type='DGPrompt', depth=3, guidance='linear')
    affinity = shapes_classifier(dict(prompt, pooling='affinity'), CLASSES,
                                 perturb=0.05)
    mean = shapes_classifier(prompt, CLASSES)
    mean.load_state_dict(affinity.state_dict())
    images = shape_images[:3]
    with torch.no_grad():
        frozen = affinity.frozen_image_pass(images, with_tokens=False)
        t0 = affinity.class_anchors()
        tokens = affinity._current_class_set().tokens

        def visual(clf, anchors_):
            return clf.text_prompt.encode_jointly(
                clf.clip, tokens, images, image=frozen,
                anchors=anchors_).visual_prompts[1]

        uniform = visual(affinity, t0[:1].expand_as(t0))
        weighted = visual(affinity, t0)
        pooled = visual(mean, t0)
    assert_close_to_scale(uniform, pooled, rel=1e-4)
    base = mean.text_prompt.visual[1]
    assert (weighted - pooled).abs().max() > 0.05 * (pooled - base).abs().max()


# ---------------------------------------------------------- TFT (TOMM)
def test_tft_class_agnostic_query_follows_the_prediction(clip, shape_images):
    """class_agnostic=True: the query is the text features weighted by the
    prediction softmax(cos(f, g) / T). On real images each image's query
    is nearest its own predicted class's text, and the queries of images
    predicted as different classes differ. Catches: uniform weights (the
    prediction ignored)."""
    tft = TFT(clip, class_agnostic=True)
    with torch.no_grad():
        f = clip.encode_image(shape_images).float()
        g = anchors(clip, CLASSES)[None]
        query = tft.queries(f, g)[:, 0]  # (B, D)
        predicted = cosine_logits(f, g, torch.tensor(1.)).argmax(1)
        nearest = cosine_logits(query, g, torch.tensor(1.)).argmax(1)
    assert len(set(predicted.tolist())) >= 3
    assert torch.equal(nearest, predicted)


# ------------------------------------------------------------ FTP (MPL)
def test_ftp_components_carry_different_image_content(clip):
    """On 16 real images of the shape world, FTP's M components are not M
    views of one vector: each component's image-to-image similarity
    structure differs from the others' (the off-diagonal cosines of two
    components correlate below 0.9), and every component varies with the
    image. Catches: components that are scaled copies of f0."""
    torch.manual_seed(0)
    ftp = FTP(clip)
    labels = torch.arange(0, len(NAMES), 2)[:16]
    with torch.no_grad():
        f0 = clip.encode_image(single_object_batch(labels)).float()
        parts = F.normalize(ftp.components(f0), dim=-1)  # (B, M, D)
    grams = torch.einsum('bmd,cmd->mbc', parts, parts)  # (M, B, B)
    off = ~torch.eye(len(labels), dtype=torch.bool)
    flat = grams[:, off]  # (M, B*(B-1))
    assert (flat.std(1) > 0.05).all()  # each component depends on the image
    corr = torch.corrcoef(flat)
    upper = torch.triu(torch.ones_like(corr, dtype=torch.bool), 1)
    assert corr[upper].max() < 0.9, corr
