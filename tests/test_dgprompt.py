"""MaPLe and DGPrompt (tiny CLIPs, CPU); the retention losses are in
test_retention.py."""
import json
import os.path as osp

import open_clip
import pytest
import torch
import torch.nn.functional as F

import mmpl
from mmpl.prompts import DGPrompt, MaPLe
from helpers import build_classifier, record_blocks, samples, train_losses

DEEP_ARCH = 'mmpl-tiny-vit-4layers'
CLASSES = ['cat', 'dog', 'sea lion', 'red panda', 'airliner']
OTHER_CLASSES = ['tulip', 'rose', 'daisy']


@pytest.fixture(scope='module')
def deep_arch(tmp_path_factory):
    """A tiny CLIP with 4 layers per tower (registered from a tmp folder), so
    that depth J=3 leaves one layer without prompts."""
    src = osp.join(osp.dirname(mmpl.__file__), 'clip', 'model_configs',
                   'mmpl-tiny-vit.json')
    cfg = json.load(open(src))
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
    dict(type='DGPrompt', depth=3),
    dict(type='DGPrompt', depth=3, guidance='cross_attention'),
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

    monkeypatch.setattr(text, 'encode_class_prompts', whole)
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
@pytest.mark.parametrize('kwargs', [
    dict(guidance='linear'),
    dict(guidance='cross_attention', guidance_heads=4),
    dict(guidance='linear', image_conditioned=True),
])
def test_dgprompt_every_parameter_gets_gradients(deep_arch, tiny_images,
                                                 kwargs):
    clf = build(deep_arch, dict(type='DGPrompt', depth=3, **kwargs),
                extra_losses=[dict(type='TextRetentionLoss'),
                              dict(type='ImageRetentionLoss'),
                              dict(type='LogitRetentionLoss')])
    clf.train()
    out = clf.forward_features(tiny_images)
    loss = F.cross_entropy(out.logits, torch.tensor([0, 3]))
    for module in clf.extra_losses:
        loss = loss + module(out, torch.tensor([0, 3]))
    loss.backward()
    named = dict(clf.text_prompt.named_parameters())
    assert any(k.startswith('text_to_visual') for k in named)
    assert any(k.startswith('visual_to_text') for k in named)
    for name, param in named.items():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name
    assert set(named) == {k[len('text_prompt.'):]
                          for k, p in clf.named_parameters()
                          if p.requires_grad}


def _generate_after(dg, edit):
    with torch.no_grad():
        before = dg.generate()
        edit()
        after = dg.generate()
    return before, after


@pytest.mark.parametrize('guidance', ['linear', 'cross_attention'])
def test_dgprompt_guidance_crosses_towers_layer_by_layer(deep_arch, guidance):
    from mmpl.clip import FrozenCLIP
    clip = FrozenCLIP(arch=deep_arch)
    torch.manual_seed(0)
    dg = DGPrompt(clip, depth=4, guidance=guidance, guidance_heads=4,
                  alpha=0.0)
    # layer 1's text prompts -> layer 2's visual prompts (not layer 1's)
    (t, v), (t2, v2) = _generate_after(
        dg, lambda: dg.deep_text[0].add_(1.0))
    assert not torch.equal(v[2], v2[2])
    assert torch.equal(v[1], v2[1])
    assert not torch.equal(t[1], t2[1])
    # layer 1's visual prompts -> layer 2's text prompts (not layer 1's)
    (t, v), (t2, v2) = _generate_after(dg, lambda: dg.visual[1].add_(1.0))
    assert not torch.equal(t[2], t2[2])
    assert torch.equal(t[1], t2[1])
    # generated prompts (layers >= 1) are new tensors, not the parameters
    t, v = dg.generate()
    assert all(x is not p for x, p in zip(t[1:], dg.deep_text))
    assert all(x is not p for x, p in zip(v[1:], dg.visual[1:]))


def test_dgprompt_residual_and_independent_prompts(deep_arch):
    from mmpl.clip import FrozenCLIP
    clip = FrozenCLIP(arch=deep_arch)
    torch.manual_seed(0)
    dg = DGPrompt(clip, depth=3, guidance='none', n_ctx=4, n_visual=3,
                  alpha=0.0)
    t, v = dg.generate()
    assert torch.equal(t[1], dg.deep_text[0]) and torch.equal(v[2],
                                                              dg.visual[2])
    assert v[0].shape == (3, clip.vision_width)
    # without guidance the towers do not talk to each other
    (t, v), (t2, v2) = _generate_after(dg, lambda: dg.deep_text[0].add_(1.))
    assert all(torch.equal(a, b) for a, b in zip(v, v2))
    # the residual alpha carries layer l-1's generated prompts into layer l
    dg = DGPrompt(clip, depth=3, guidance='linear', alpha=0.1)
    t, v = dg.generate()
    with torch.no_grad():
        expect = (dg.visual[2] + dg.text_to_visual[1].mapper(t[1])
                  + 0.1 * v[1])
    torch.testing.assert_close(v[2], expect)
    with pytest.raises(ValueError, match='guidance must be one of'):
        DGPrompt(clip, depth=3, guidance='mlp')
    with pytest.raises(ValueError, match='must equal n_ctx'):
        DGPrompt(clip, depth=3, n_visual=3)
    t, v = DGPrompt(clip, depth=3, n_visual=3, guidance='cross_attention',
                    guidance_heads=4).generate()
    assert t[2].shape[0] == 2 and v[2].shape[0] == 3


def test_dgprompt_image_conditioned_per_image_and_chunked(tiny_clip,
                                                          tiny_images):
    prompt = dict(type='DGPrompt', depth=2, image_conditioned=True)
    clf = build('mmpl-tiny-vit', prompt)
    clf.eval()
    with torch.no_grad():
        prompts = clf.text_prompt(
            clf._current_class_set().tokens,
            clf.frozen_image_pass(tiny_images, with_tokens=False))
        logits = clf.forward_features(tiny_images).logits
        clf.text_chunk_size = 3  # B*C = 10 sequences in 4 chunks
        chunked = clf.forward_features(tiny_images).logits
        single = torch.cat([clf.forward_features(tiny_images[i:i + 1]).logits
                            for i in range(2)])
    assert prompts.embeddings.shape[:2] == (2, len(CLASSES))
    assert prompts.deep_prompts[0].shape == (2, 2, clf.clip.text_width)
    assert prompts.visual_prompts.shape == (2, 2, clf.clip.vision_width)
    assert not torch.allclose(prompts.visual_prompts[0],
                              prompts.visual_prompts[1])
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
    """Losses only run in training: evaluation encodes each image once."""
    clf = build('mmpl-tiny-vit', dict(type='DGPrompt', depth=2),
                extra_losses=[dict(type='ImageRetentionLoss')])
    calls = []
    encode = clf.clip.encode_image
    clf.clip.encode_image = lambda *a, **k: calls.append(1) or encode(*a, **k)
    clf.train()
    clf.loss(tiny_images, samples([0, 1]))
    assert len(calls) == 2  # frozen + prompted
    clf.eval()
    with torch.no_grad():
        clf.predict(tiny_images)
    assert len(calls) == 3
