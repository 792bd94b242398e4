"""MaPLe and DGPrompt (tiny CLIPs, CPU); the retention losses are in
test_retention.py."""
import json

import open_clip
import pytest
import torch
import torch.nn.functional as F

from mmpl.models import cosine_logits
from mmpl.prompts import DGPrompt, MaPLe
from mmpl.testing import TINY_ARCH
import helpers
from helpers import (assert_close_to_scale, build_classifier, randomize,
                     record_blocks, samples, train_losses)

DEEP_ARCH = 'mmpl-tiny-vit-4layers'
CLASSES = ['cat', 'dog', 'sea lion', 'red panda', 'airliner']
OTHER_CLASSES = ['tulip', 'rose', 'daisy']


@pytest.fixture(scope='module')
def deep_arch(tmp_path_factory):
    """A tiny CLIP with 4 layers per tower (registered from a tmp folder), so
    that depth J=3 leaves one layer without prompts."""
    cfg = json.load(open(TINY_ARCH))
    cfg['vision_cfg']['layers'] = cfg['text_cfg']['layers'] = 4
    folder = tmp_path_factory.mktemp('clip_configs')
    (folder / f'{DEEP_ARCH}.json').write_text(json.dumps(cfg))
    open_clip.add_model_config(str(folder))
    return DEEP_ARCH


def build(arch, text_prompt, extra_losses=(), classnames=CLASSES, **kwargs):
    return build_classifier(text_prompt, classnames, arch=arch,
                            extra_losses=list(extra_losses), **kwargs)



# ------------------------------------------------------------- token positions
@pytest.mark.parametrize('prompt', [
    dict(type='MaPLe', depth=3),
    dict(type='DGPrompt', depth=3, guidance='none'),
])
def test_deep_prompts_at_their_positions_up_to_depth(deep_arch, prompt,
                                                     tiny_images,
                                                     monkeypatch):
    clf = build(deep_arch, prompt)
    clf.eval()
    # All sequences whole, in one call through the blocks' forward, to
    # inspect positions (the fast paths, length groups and a shared prefix,
    # are tested equal to this in test_clip_adapter and test_benchmark).
    text = clf.clip.text

    def whole(prompt_embeds, eot_index, shared_prefix=0, deep_prompts=None,
              chunk_size=None):
        groups, classes = prompt_embeds.shape[:2]
        return text.encode_batch(prompt_embeds.flatten(0, 1),
                                 eot_index.repeat(groups),
                                 deep_prompts).view(groups, classes, -1)

    monkeypatch.setattr(clf.clip, 'encode_class_prompts', whole)
    model, m = clf.clip.model, 2
    text_in, text_out, h1 = record_blocks(model.transformer.resblocks)
    vis_in, vis_out, h2 = record_blocks(model.visual.transformer.resblocks)
    with torch.no_grad():
        clf.forward_features(tiny_images)
        prompts = clf.text_prompt(clf._current_class_set().tokens)
    for h in h1 + h2:
        h.remove()
    n_tokens = 1 + (224 // 32) ** 2
    # layer 0: the shallow context right after SOS, visual prompts appended
    pos = model.positional_embedding[1:1 + m]
    torch.testing.assert_close(text_in[0][:, 1:1 + m],
                               (prompts.embeddings[0, :, 1:1 + m] + pos))
    assert vis_in[0].shape[1] == n_tokens + m
    for i in range(1, 4):
        t_in, t_prev = text_in[i], text_out[i - 1]
        v_in, v_prev = vis_in[i], vis_out[i - 1]
        assert v_in.shape[1] == n_tokens + m
        if i < 3:  # replaced slots, everything else passes through
            deep_t = prompts.deep_prompts[i - 1].expand(t_in.shape[0], -1, -1)
            deep_v = prompts.deep_visual_prompts[i - 1].expand(
                v_in.shape[0], -1, -1)
            assert torch.equal(t_in[:, 1:1 + m], deep_t)
            assert not torch.equal(t_in[:, 1:1 + m], t_prev[:, 1:1 + m])
            assert torch.equal(t_in[:, :1], t_prev[:, :1])
            assert torch.equal(t_in[:, 1 + m:], t_prev[:, 1 + m:])
            assert torch.equal(v_in[:, -m:], deep_v)
            assert not torch.equal(v_in[:, -m:], v_prev[:, -m:])
            assert torch.equal(v_in[:, :n_tokens], v_prev[:, :n_tokens])
        else:  # beyond depth J: nothing is inserted anywhere
            assert torch.equal(t_in, t_prev)
            assert torch.equal(v_in, v_prev)
    assert len(prompts.deep_prompts) == len(prompts.deep_visual_prompts) == 2


def test_depth_beyond_the_layers(deep_arch):
    from mmpl.clip import FrozenCLIP
    clip = FrozenCLIP(arch=deep_arch)
    with pytest.raises(ValueError, match='depth 9 exceeds the 4-layer'):
        MaPLe(clip, depth=9, depth_overflow='error')
    with pytest.raises(ValueError, match='depth 9 exceeds the 4-layer'):
        DGPrompt(clip, depth=9, depth_overflow='error')
    assert MaPLe(clip, depth=9).depth == 4  # clipped, with a warning
    assert DGPrompt(clip, depth=1).deep_text.__len__() == 0


# ---------------------------------------------------------------------- MaPLe
def test_maple_visual_prompts_are_linear_images_of_text(deep_arch):
    clf = build(deep_arch, dict(type='MaPLe', depth=4))
    maple = clf.text_prompt
    prompts = maple(clf._current_class_set().tokens)
    # init: 'a photo of a' truncated to M=2 -> 'a photo'
    ids = clf.clip.tokenize(['a photo'])
    torch.testing.assert_close(maple.ctx, clf.clip.embed_tokens(ids)[0, 1:3])
    torch.testing.assert_close(prompts.embeddings[0, :, 1:3],
                               maple.ctx.expand(len(CLASSES), -1, -1))
    texts = [maple.ctx] + list(prompts.deep_prompts)
    visuals = [prompts.visual_prompts] + list(prompts.deep_visual_prompts)
    projs = [maple.proj] + list(maple.deep_proj)
    assert len(texts) == len(visuals) == len(projs) == 4
    for t, v, proj in zip(texts, visuals, projs):
        assert v.shape == (2, clf.clip.vision_width)
        torch.testing.assert_close(v, t @ proj.weight.t() + proj.bias)
    # the coupling is linear: v(a*t1 + b*t2) = a*v(t1) + b*v(t2) - (a+b-1)*bias
    t1, t2 = torch.randn(2, 2, clf.clip.text_width)
    lhs = projs[1](0.3 * t1 + 0.7 * t2)
    torch.testing.assert_close(lhs, 0.3 * projs[1](t1) + 0.7 * projs[1](t2))


# ------------------------------------------------------------------- DGPrompt
SHAPE_CLASSES = ['red triangle', 'blue circle', 'green square',
                 'yellow star', 'purple hexagon']


def shapes_classifier(text_prompt, classnames=SHAPE_CLASSES, **kwargs):
    """Trained-looking prompts on the shipped tiny CLIP (3 + 3 layers)."""
    return helpers.shapes_classifier(text_prompt, classnames, perturb=0.05,
                                     **kwargs)


@pytest.fixture(scope='module')
def shape_images():
    """(2, 3, 64, 64) two rendered shapes, CLIP-normalised."""
    from mmpl.clip import CLIP_MEAN, CLIP_STD
    from mmpl_lab.shapes import render_batch
    x = torch.from_numpy(render_batch(['red triangle', 'blue circle'],
                                      seed=0)).permute(0, 3, 1, 2).float()
    mean, std = torch.tensor(CLIP_MEAN), torch.tensor(CLIP_STD)
    return (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def _joint(clf, images, **kwargs):
    """DGPrompt's interleaved forward, with the generated prompts."""
    return clf.text_prompt.encode_jointly(
        clf.clip, clf._current_class_set().tokens, images, **kwargs)


def _ivlp_logits(clf, images, texts, visuals):
    """Logits of independent deep prompts holding ``texts`` / ``visuals``
    (J each, shared by the batch), through the ordinary encoders."""
    from mmpl.prompts.context import insert_context, shared_prefix_length
    tokens = clf._current_class_set().tokens
    embeds = insert_context(texts[0], tokens.prefix, tokens.suffix)
    g = clf.clip.encode_class_prompts(
        embeds, tokens.eot_index,
        shared_prefix_length(texts[0], tokens.n_frozen_context), texts[1:])
    f = clf.clip.encode_image(images, visuals[0], visuals[1:])
    return cosine_logits(f.float(), g.float(), clf.clip.logit_scale)


GUIDED = [dict(guidance='linear'),
          dict(guidance='cross_attention', guidance_heads=4),
          dict(guidance='linear', pooling='affinity')]


@pytest.mark.parametrize('kwargs', GUIDED, ids=str)
@torch.no_grad()
def test_dgprompt_text_features_depend_on_the_image(shape_images, kwargs):
    """Image content reaches the text prompts: the same class's text
    feature differs between two images, and no fixed set of deep prompts
    reproduces DGPrompt (image 0's generated prompts, fixed, give image 0's
    logits but not image 1's)."""
    clf = shapes_classifier(dict(type='DGPrompt', depth=3, **kwargs))
    clf.eval()
    out = clf.forward_features(shape_images)
    g = F.normalize(out.text_features, dim=-1)
    assert g.shape[:2] == (2, len(SHAPE_CLASSES))
    assert (g[0] - g[1]).abs().max() > 1e-3
    # per image: image 1 alone gives its row
    alone = clf.forward_features(shape_images[1:])
    torch.testing.assert_close(alone.logits, out.logits[1:], atol=1e-4,
                               rtol=0)
    frozen = clf.frozen_image_pass(shape_images, with_tokens=False)
    joint = _joint(clf, shape_images, image=frozen,
                   anchors=clf.class_anchors())
    fixed = ([joint.text_prompts[0]] + [t[0] for t in joint.text_prompts[1:]],
             [joint.visual_prompts[0]] +
             [v[0] for v in joint.visual_prompts[1:]])
    ivlp = _ivlp_logits(clf, shape_images, *fixed)
    torch.testing.assert_close(ivlp[0], out.logits[0], atol=1e-4, rtol=0)
    assert (ivlp[1] - out.logits[1]).abs().max() > 1e-3


@pytest.mark.parametrize('kwargs', GUIDED, ids=str)
@torch.no_grad()
def test_dgprompt_image_features_depend_on_the_class_set(shape_images,
                                                         kwargs):
    """Class-set text content reaches the visual prompts; without guidance
    the image features ignore the class set."""
    def image_features(clf, classes):
        clf.set_classes(classes)
        return clf.forward_features(shape_images).image_features

    other = ['orange cross', 'white moon', 'black heart']
    clf = shapes_classifier(dict(type='DGPrompt', depth=3, **kwargs))
    clf.eval()
    a, b = image_features(clf, SHAPE_CLASSES), image_features(clf, other)
    assert (F.normalize(a, dim=-1) - F.normalize(b, dim=-1)).abs().max() \
        > 1e-4
    ivlp = shapes_classifier(dict(type='DGPrompt', depth=3, guidance='none'))
    ivlp.eval()
    assert torch.equal(image_features(ivlp, SHAPE_CLASSES),
                       image_features(ivlp, other))


@pytest.mark.parametrize('kwargs', GUIDED + [
    dict(guidance='linear', image_conditioned=True)], ids=str)
def test_dgprompt_every_parameter_gets_gradients(shape_images, deep_arch,
                                                 tiny_images, kwargs):
    losses = [dict(type='TextRetentionLoss'), dict(type='ImageRetentionLoss'),
              dict(type='LogitRetentionLoss')]
    if kwargs.get('image_conditioned'):
        # (on the shapes CLIP the meta-net's 4 hidden ReLUs are all off
        # for these two images: CoCoOp's meta-net, not the guidance)
        clf = build(deep_arch, dict(type='DGPrompt', depth=3, **kwargs),
                    extra_losses=losses)
        images = tiny_images
    else:
        clf = shapes_classifier(dict(type='DGPrompt', depth=3, **kwargs),
                                extra_losses=losses)
        images = shape_images
    clf.train()
    loss = sum(clf.loss(images, samples([0, 1])).values())
    loss.backward()
    named = dict(clf.text_prompt.named_parameters())
    assert sum(k.startswith('text_to_visual') for k in named) >= 4
    assert sum(k.startswith('visual_to_text') for k in named) >= 4
    for name, param in named.items():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name
    assert set(named) == {k[len('text_prompt.'):]
                          for k, p in clf.named_parameters()
                          if p.requires_grad}


@pytest.mark.parametrize('guidance', ['linear', 'cross_attention', 'none'])
def test_dgprompt_gradients_cross_the_towers_along_the_layers(shape_images,
                                                              guidance):
    """Layer 1's visual prompts reach the *text* features only through the
    image tower's layer-2 states -> layer 2's text prompts, and layer 1's
    text prompts the *image* features only through the text tower's layer-2
    EOT states -> layer 2's visual prompts; layer 0's context reaches the
    image features through layer 1. Without guidance none of these paths
    exists (a detached chain fails here)."""
    clf = shapes_classifier(dict(type='DGPrompt', depth=3,
                                 guidance=guidance, guidance_heads=4))
    dg = clf.text_prompt
    out = clf.forward_features(shape_images)
    f, g = out.image_features, out.text_features

    def grad(y, x):
        d = torch.autograd.grad(y.sum(), x, retain_graph=True,
                                allow_unused=True)[0]
        return 0.0 if d is None else float(d.abs().sum())

    paths = [grad(g, dg.visual[1]), grad(f, dg.deep_text[0]),
             grad(f, dg.ctx), grad(g, dg.visual[0])]
    if guidance == 'none':
        assert paths == [0.0] * 4
    else:
        assert all(p > 0 for p in paths), paths


def test_dgprompt_without_guidance_is_independent_deep_prompts(shape_images):
    """``guidance='none', alpha=0``: the deep prompts are the parameters
    (IVLP), through the ordinary encoders (shared text features) and through
    the interleaved towers alike."""
    clf = shapes_classifier(dict(type='DGPrompt', depth=3, guidance='none',
                                 alpha=0.0, n_ctx=4, n_visual=3))
    dg = clf.text_prompt
    assert not dg.encodes_jointly
    clf.eval()
    with torch.no_grad():
        out = clf.forward_features(shape_images)
        texts = [dg.ctx] + list(dg.deep_text)
        ivlp = _ivlp_logits(clf, shape_images, texts, list(dg.visual))
        joint = _joint(clf, shape_images)
    assert out.text_features.shape[0] == 1
    torch.testing.assert_close(out.logits, ivlp, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        cosine_logits(joint.image_features.float(),
                      joint.text_features.float(), clf.clip.logit_scale),
        ivlp, atol=1e-4, rtol=0)
    assert all(torch.equal(a, b) for a, b in zip(joint.text_prompts, texts))
    assert joint.visual_prompts[2].shape == (3, clf.clip.vision_width)


@torch.no_grad()
def test_dgprompt_residual_carries_the_previous_layer(shape_images):
    """T_l = Tbase_l + G(image states) + alpha T_{l-1}: with the guidance
    maps zeroed the generated prompts are the base plus the residual."""
    clf = shapes_classifier(dict(type='DGPrompt', depth=3, alpha=0.3))
    dg = clf.text_prompt
    full = _joint(clf, shape_images)
    for m in list(dg.visual_to_text) + list(dg.text_to_visual):
        m.mapper.weight.zero_()
        m.mapper.bias.zero_()
    joint = _joint(clf, shape_images)
    t, v = joint.text_prompts, joint.visual_prompts
    torch.testing.assert_close(t[1], (dg.deep_text[0] + 0.3 * dg.ctx)
                               .expand(2, -1, -1))
    torch.testing.assert_close(t[2], dg.deep_text[1] + 0.3 * t[1])
    torch.testing.assert_close(v[2], dg.visual[2] + 0.3 * v[1])
    torch.testing.assert_close(v[1], (dg.visual[1] + 0.3 * dg.visual[0])
                               .expand(2, -1, -1))
    # with the maps, the guidance term is per image and not zero
    guided = full.text_prompts[2] - dg.deep_text[1] - 0.3 * \
        full.text_prompts[1]
    assert guided.abs().max() > 1e-4
    assert (guided[0] - guided[1]).abs().max() > 1e-6


@pytest.mark.parametrize('kwargs', GUIDED + [
    dict(guidance='linear', image_conditioned=True)], ids=str)
def test_dgprompt_equals_its_per_image_full_sequence_reference(kwargs):
    """The shared prefix once per image, the class positions attending to
    it, all images and classes batched, equals the per-image loop over full
    77-token sequences: logits, loss and gradients."""
    from mmpl_lab import speed as bm
    names = bm.benchmark_classnames(6)  # names of several token lengths
    clf = shapes_classifier(
        dict(type='DGPrompt', depth=3, **kwargs), names, text_chunk_size=4,
        extra_losses=[dict(type='TextRetentionLoss'),
                      dict(type='ImageRetentionLoss'),
                      dict(type='LogitRetentionLoss')])
    assert len(set(clf._current_class_set().tokens.eot_index.tolist())) >= 3
    images, data = bm.synthetic_batch(clf, 3)
    assert bm.max_logit_difference(clf, images) < 1e-5
    with torch.no_grad(), bm.count_text_work(clf) as work:
        bm.logits(clf, images, 'mmpl')
    # the [SOS] c1 c2 'of a' prefix (P = 5) once per image, each class cut
    # after its own EOT, one block call per length group (+ the prefixes)
    eot = clf._current_class_set().tokens.eot_index
    assert work.passes == 1 and work.prefix_tokens == 3 * 5
    assert work.tokens == 3 * 5 + 3 * int((eot + 1 - 5).sum())
    assert work.block_calls == 1 + len(set(eot.tolist()))
    clf.train()
    results = {}
    for form in bm.FORMULATIONS:
        clf.zero_grad(set_to_none=True)
        loss = bm.training_loss(clf, images, data, form)
        loss.backward()
        results[form] = loss.item(), {n: p.grad.clone() for n, p in
                                      clf.named_parameters()
                                      if p.grad is not None}
    (loss, grads), (ref_loss, ref_grads) = results['mmpl'], \
        results['reference']
    assert loss == pytest.approx(ref_loss, abs=1e-5)
    assert grads.keys() == ref_grads.keys() and len(grads) > 10
    scale = max(float(g.abs().max()) for g in ref_grads.values())
    for name, g in grads.items():
        assert_close_to_scale(g, ref_grads[name], scale=scale, msg=name)


@torch.no_grad()
def test_dgprompt_prompts_at_their_slots_layer_by_layer(deep_arch,
                                                        tiny_images):
    """Layer l < J: the generated prompts sit at text positions 1 .. M of
    each image's prefix and in the image's last Mv tokens; beyond J nothing
    is replaced."""
    clf = build(deep_arch, dict(type='DGPrompt', depth=3))
    clf.eval()
    model, m = clf.clip.model, 2
    text_in, text_out = {}, {}
    run = clf.clip.text.run

    def text_block(x, start, stop, *args, **kwargs):  # packed rows (T, Dt)
        text_in[start] = x
        text_out[start] = run(x, start, stop, *args, **kwargs)
        return text_out[start]

    vis_in, vis_out, h2 = record_blocks(model.visual.transformer.resblocks)
    clf.clip.text.run = text_block
    try:
        joint = _joint(clf, tiny_images)
    finally:
        del clf.clip.text.run
        for h in h2:
            h.remove()
    prefix = 1 + m + 2  # [SOS] c1 c2 'of a'
    assert len(joint.text_prompts) == len(joint.visual_prompts) == 3
    # one block at a time; the prefix rows (first) run once per image, and
    # the last block does not compute their output (nothing reads it)
    layers = clf.clip.text.layers
    assert sorted(text_in) == list(range(layers))
    rows = text_in[0].shape[0]
    assert text_out[layers - 1].shape[0] == rows - 2 * prefix
    text_in = {i: x[:2 * prefix].view(2, prefix, -1)
               for i, x in text_in.items()}
    text_out = {i: x[:2 * prefix].view(2, prefix, -1)
                for i, x in text_out.items()}
    for i in (1, 2):
        t_in, t_prev = text_in[i], text_out[i - 1]
        v_in, v_prev = vis_in[i], vis_out[i - 1]
        assert torch.equal(t_in[:, 1:1 + m], joint.text_prompts[i])
        assert not torch.equal(t_in[:, 1:1 + m], t_prev[:, 1:1 + m])
        assert torch.equal(t_in[:, :1], t_prev[:, :1])
        assert torch.equal(t_in[:, 1 + m:], t_prev[:, 1 + m:])
        assert torch.equal(v_in[:, -m:], joint.visual_prompts[i])
        assert torch.equal(v_in[:, :-m], v_prev[:, :-m])
    assert torch.equal(vis_in[3], vis_out[2])  # beyond J: nothing replaced


def test_dgprompt_options(deep_arch):
    from mmpl.clip import FrozenCLIP
    from mmpl.utils.errors import ConfigError
    clip = FrozenCLIP(arch=deep_arch)
    for bad in (dict(guidance='mlp'), dict(pooling='max'),
                dict(guidance='cross_attention', guidance_heads=5)):
        with pytest.raises(ConfigError):
            DGPrompt(clip, depth=3, **bad)
    dg = DGPrompt(clip, depth=3, n_visual=3, guidance='cross_attention',
                  guidance_heads=4)
    assert dg.visual[2].shape[0] == 3 and dg.deep_text[1].shape[0] == 2
    assert dg.needs.frozen_image is False and dg.needs.anchors is False
    affinity = DGPrompt(clip, depth=3, pooling='affinity').needs
    assert affinity.frozen_image and affinity.anchors
    with pytest.raises(RuntimeError, match='encode_jointly'):
        dg.generate()


def test_dgprompt_image_conditioned_and_chunked(tiny_images):
    clf = build('mmpl-tiny-vit', dict(type='DGPrompt', depth=2,
                                      image_conditioned=True))
    randomize(clf.text_prompt.visual_meta_net)  # live ReLUs (4 hidden)
    clf.eval()
    with torch.no_grad():
        frozen = clf.frozen_image_pass(tiny_images, with_tokens=False)
        joint = _joint(clf, tiny_images, image=frozen)
        logits = clf.forward_features(tiny_images).logits
        clf.text_chunk_size = 3  # B*C = 10 class sequences, 4 per call
        chunked = clf.forward_features(tiny_images).logits
        single = torch.cat([clf.forward_features(tiny_images[i:i + 1]).logits
                            for i in range(2)])
    assert joint.text_prompts[0].shape == (2, 2, clf.clip.text_width)
    assert joint.visual_prompts[0].shape == (2, 2, clf.clip.vision_width)
    assert not torch.allclose(joint.visual_prompts[0][0],
                              joint.visual_prompts[0][1])
    torch.testing.assert_close(chunked, logits)
    torch.testing.assert_close(single, logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('prompt', [
    dict(type='MaPLe', depth=2),
    dict(type='DGPrompt', depth=2),
])
def test_a_few_training_steps_decrease_the_loss(tiny_images, prompt):
    clf = build('mmpl-tiny-vit', prompt,
                extra_losses=[dict(type='TextRetentionLoss'),
                              dict(type='ImageRetentionLoss'),
                              dict(type='LogitRetentionLoss')])
    clf.train()
    totals = train_losses(clf, tiny_images, samples([0, 3]), steps=5,
                          lr=0.001)
    assert totals[-1] < totals[0], totals


def test_no_frozen_image_pass_at_evaluation_for_losses(tiny_images):
    """Losses only run in training: evaluation encodes each image once
    (the prompted pass, interleaved with the text tower)."""
    clf = build('mmpl-tiny-vit', dict(type='DGPrompt', depth=2),
                extra_losses=[dict(type='ImageRetentionLoss')])
    calls = []
    for owner, name in ((clf.clip, 'encode_image'),
                        (clf.text_prompt, 'encode_jointly')):
        fn = getattr(owner, name)
        setattr(owner, name, lambda *a, fn=fn, name=name, **k:
                calls.append(name) or fn(*a, **k))
    clf.train()
    clf.loss(tiny_images, samples([0, 1]))
    assert calls == ['encode_image', 'encode_jointly']  # frozen + prompted
    clf.eval()
    with torch.no_grad():
        clf.predict(tiny_images)
    assert calls[2:] == ['encode_jointly']


def test_value_path_tuner_with_interleaved_towers_fails_at_build(deep_arch,
                                                               tiny_images):
    """DGPrompt runs the image tower itself and returns final tokens only:
    a feature tuner reading the value path is refused at build, one line;
    on the final tokens it combines."""
    prompt = dict(type='DGPrompt', depth=3)
    with pytest.raises(ValueError, match=r"TFT\(dense='values'\) needs the "
                       r"value-path readout.*use dense='tokens'"):
        build(deep_arch, prompt, feature_tuner=dict(type='TFT'))
    clf = build(deep_arch, prompt,
                feature_tuner=dict(type='TFT', dense='tokens'))
    assert clf(tiny_images, mode='tensor').shape == (len(tiny_images),
                                                     len(CLASSES))


@torch.no_grad()
def test_ivlp_is_dgprompt_without_guidance_and_residual(shape_images):
    """IVLP is the module DGPrompt extends: the same parameters, and with the
    guidance off and alpha 0 DGPrompt computes IVLP's logits."""
    ivlp = shapes_classifier(dict(type='IVLP', n_ctx=4, depth=3))
    dg = shapes_classifier(dict(type='DGPrompt', n_ctx=4, depth=3,
                                guidance='none', alpha=0.0))
    assert isinstance(dg.text_prompt, type(ivlp.text_prompt))
    assert ivlp.state_dict().keys() == dg.state_dict().keys()
    dg.load_state_dict(ivlp.state_dict())
    ivlp.eval()
    dg.eval()
    torch.testing.assert_close(ivlp.forward_features(shape_images).logits,
                               dg.forward_features(shape_images).logits,
                               rtol=0, atol=0)
