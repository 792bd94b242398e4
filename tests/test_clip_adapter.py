"""Tests of mmpl.clip: the frozen CLIP adapter (parity with open_clip, the
exact EOT cut, deep prompt slots in both towers) and the builder (offline
weights, QuickGELU, one-line errors).

Fast and offline: random weights, the tiny architecture everywhere except one
ViT-B-16 parity test (real widths)."""
import json

import open_clip
import pytest
import torch
from torch import nn

from mmpl.clip import CLIPBuildError, FrozenCLIP, build_open_clip
from mmpl.clip import builder as clip_builder
from mmpl.clip import check_arch
from helpers import one_line, record_blocks

TEXTS = ['a photo of a dog.', 'x', 'an aerial view of a permanent crop land.',
         'sea or lake', 'a b c d e f g h i j k l m n o p']
# Five texts of one token length: one batched call, so that the block
# inputs of every sequence can be inspected together.
SAME_LENGTH = ['a photo of a dog.', 'a photo of a cat.',
               'one two three four five six', 'a b c d e f',
               'sea or lake in it now']
ATOL = 1e-5

# A 4+4-layer variant of the tiny architecture, so that deep prompts can stop
# before the last layer.
DEEP_ARCH = 'mmpl-test-tiny-deep4'
QUICKGELU_ARCH = 'mmpl-test-tiny-quickgelu'


def _tiny_cfg(layers=2, quick_gelu=False):
    return {
        'embed_dim': 64, 'quick_gelu': quick_gelu,
        'vision_cfg': {'image_size': 224, 'layers': layers, 'width': 64,
                       'head_width': 32, 'patch_size': 32},
        'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': 64,
                     'heads': 2, 'layers': layers}}


@pytest.fixture(scope='module')
def deep_archs(tmp_path_factory):
    """Register two extra tiny architectures with open_clip."""
    d = tmp_path_factory.mktemp('archs')
    with open(d / f'{DEEP_ARCH}.json', 'w') as f:
        json.dump(_tiny_cfg(layers=4), f)
    with open(d / f'{QUICKGELU_ARCH}.json', 'w') as f:
        json.dump(_tiny_cfg(quick_gelu=True), f)
    open_clip.add_model_config(str(d))
    return DEEP_ARCH, QUICKGELU_ARCH


@pytest.fixture(scope='module')
def deep_clip(deep_archs):
    torch.manual_seed(2)
    return FrozenCLIP(arch=DEEP_ARCH)


@pytest.fixture(scope='module')
def vitb16():
    torch.manual_seed(3)
    return FrozenCLIP(arch='ViT-B-16')


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _reference_text(clip, x, eot_index, deep=None):
    """Straightforward full-length text encoder (no cut), for comparison.

    x: (N, 77, Dt) embeddings; deep: per layer 1.. (N, M, Dt)."""
    text = clip.model
    x = x + text.positional_embedding
    for i, block in enumerate(text.transformer.resblocks):
        if deep is not None and 0 < i <= len(deep):
            x = x.clone()
            x[:, 1:1 + deep[i - 1].shape[1]] = deep[i - 1]
        x = block(x, attn_mask=text.attn_mask)
    x = text.ln_final(x)
    x = x[torch.arange(x.shape[0]), eot_index]
    return x @ text.text_projection



# --------------------------------------------------------------------- parity
@torch.no_grad()
def test_text_parity_with_open_clip(tiny_clip):
    ids = tiny_clip.tokenize(TEXTS)
    ours = tiny_clip.encode_token_ids(ids)
    ref = tiny_clip.model.encode_text(ids)
    assert ours.shape == (len(TEXTS), tiny_clip.embed_dim)
    torch.testing.assert_close(ours, ref, atol=ATOL, rtol=0)


@torch.no_grad()
def test_image_parity_with_open_clip(tiny_clip, tiny_images):
    ours = tiny_clip.encode_image(tiny_images)
    ref = tiny_clip.model.encode_image(tiny_images)
    torch.testing.assert_close(ours, ref, atol=ATOL, rtol=0)
    pooled, tokens = tiny_clip.encode_image(tiny_images, return_tokens=True)
    torch.testing.assert_close(pooled, ref, atol=ATOL, rtol=0)


@torch.no_grad()
def test_return_tokens_are_projected_ln_post_tokens(tiny_clip, tiny_images):
    visual = tiny_clip.model.visual
    pooled, tokens = tiny_clip.encode_image(tiny_images, return_tokens=True)
    n_patches = (224 // 32)**2
    assert tokens.shape == (2, 1 + n_patches, tiny_clip.embed_dim)
    # class token after ln_post @ proj is the pooled feature
    torch.testing.assert_close(tokens[:, 0], pooled, atol=ATOL, rtol=0)
    # patch tokens: open_clip's own token path, projected
    x = visual.transformer(visual._embeds(tiny_images))
    _, ref_tokens = visual._pool(x)
    torch.testing.assert_close(tokens[:, 1:], ref_tokens @ visual.proj,
                               atol=ATOL, rtol=0)


@torch.no_grad()
def test_vitb16_parity_and_widths(vitb16):
    """Real widths (text 512, vision 768): nothing is hard-coded."""
    assert (vitb16.text_width, vitb16.vision_width, vitb16.embed_dim) == (
        512, 768, 512)
    assert (vitb16.text_layers, vitb16.vision_layers) == (12, 12)
    assert vitb16.context_length == 77
    ids = vitb16.tokenize(TEXTS[:3])
    torch.testing.assert_close(vitb16.encode_token_ids(ids),
                               vitb16.model.encode_text(ids), atol=ATOL,
                               rtol=0)
    img = _rand(1, 3, 224, 224, seed=5)
    pooled, tokens = vitb16.encode_image(img, return_tokens=True)
    torch.testing.assert_close(pooled, vitb16.model.encode_image(img),
                               atol=ATOL, rtol=0)
    assert tokens.shape == (1, 1 + 14 * 14, 512)
    torch.testing.assert_close(tokens[:, 0], pooled, atol=ATOL, rtol=0)


def test_tiny_widths(tiny_clip):
    assert (tiny_clip.text_width, tiny_clip.vision_width,
            tiny_clip.embed_dim) == (64, 64, 64)
    assert (tiny_clip.text_layers, tiny_clip.vision_layers) == (2, 2)
    assert tiny_clip.is_vit


# ----------------------------------------------------------------- EOT cut
@torch.no_grad()
def test_cut_after_last_eot_is_exact(tiny_clip):
    ids = tiny_clip.tokenize(TEXTS)
    eot = tiny_clip.eot_index(ids)
    emb = tiny_clip.embed_tokens(ids)  # (N, 77, Dt)
    # shallow prompts after SOS, so the test is not about plain tokens only
    emb[:, 1:3] = _rand(len(TEXTS), 2, emb.shape[-1], seed=7) * 0.02
    ref = _reference_text(tiny_clip, emb, eot)
    torch.testing.assert_close(tiny_clip.encode_text(emb, eot), ref,
                               atol=ATOL, rtol=0)
    # already-cut input gives the same result
    cut = emb[:, :int(eot.max()) + 1]
    torch.testing.assert_close(tiny_clip.encode_text(cut, eot), ref,
                               atol=ATOL, rtol=0)


@torch.no_grad()
def test_tokens_after_own_eot_do_not_matter(tiny_clip):
    ids = tiny_clip.tokenize(TEXTS)
    eot = tiny_clip.eot_index(ids)
    emb = tiny_clip.embed_tokens(ids)
    noisy = emb.clone()
    for n, e in enumerate(eot.tolist()):
        noisy[n, e + 1:] = _rand(77 - e - 1, emb.shape[-1], seed=n)
    torch.testing.assert_close(tiny_clip.encode_text(noisy, eot),
                               tiny_clip.encode_text(emb, eot), atol=ATOL,
                               rtol=0)


@torch.no_grad()
def test_text_sequence_is_actually_cut(tiny_clip):
    ids = tiny_clip.tokenize(['a dog', 'a photo of a cat.'])
    eot = tiny_clip.eot_index(ids)
    inputs, _, handles = record_blocks(
        tiny_clip.model.transformer.resblocks)
    try:
        tiny_clip.encode_text(tiny_clip.embed_tokens(ids), eot)
    finally:
        for h in handles:
            h.remove()
    assert inputs[0].shape[1] == int(eot.max()) + 1 == 8


@torch.no_grad()
@pytest.mark.parametrize('waste', [0.0, 10.0])
def test_length_groups_each_cut_after_their_longest_eot(tiny_clip,
                                                        monkeypatch, waste):
    """Sequences are encoded in groups of equal EOT position (``waste`` 0)
    or in merged groups padded to their longest member (a large ``waste``:
    one group), each cut after its last EOT; the result is the full-length
    result, in the input order (exact under the causal mask)."""
    from mmpl.clip import text_plan
    monkeypatch.setattr(text_plan, 'GROUP_PAD_WASTE', waste)
    ids = tiny_clip.tokenize(TEXTS)
    eot = tiny_clip.eot_index(ids)
    assert len(set(eot.tolist())) > 1
    emb = tiny_clip.embed_tokens(ids)
    lengths = []
    block = tiny_clip.model.transformer.resblocks[0]
    handle = block.register_forward_pre_hook(
        lambda m, args: lengths.append(tuple(args[0].shape[:2])))
    try:
        grouped = tiny_clip.encode_text(emb, eot)
    finally:
        handle.remove()
    expected = sorted((int((eot == e).sum()), e + 1)
                      for e in set(eot.tolist())) if waste == 0 else [
                          (len(TEXTS), int(eot.max()) + 1)]
    assert sorted(lengths) == expected
    torch.testing.assert_close(grouped, _reference_text(tiny_clip, emb, eot),
                               atol=ATOL, rtol=0)


def test_neighbouring_length_groups_merge_within_the_padding_budget():
    from mmpl.clip.text_plan import merged_group_sizes

    # 2 x 5 + 1 x 6 exact tokens = 16; merged 3 x 6 = 18 <= 1.25 x 16
    assert merged_group_sizes([4, 5], [2, 1], 0.25) == [3]
    assert merged_group_sizes([4, 5], [2, 1], 0.0) == [2, 1]
    # 2 x 5 + 2 x 20 = 50; merged 4 x 20 = 80 > 1.25 x 50
    assert merged_group_sizes([4, 19], [2, 2], 0.25) == [2, 2]
    assert merged_group_sizes([4, 5, 19], [3, 3, 1], 0.25) == [6, 1]


# ------------------------------------------------------- shared prefixes
PREFIX_NAMES = ['dog', 'permanent crop land', 'x', 'sea or lake',
                'a b c d e f g h']


def _class_prompts(clip, groups, prefix, seed, grad=False):
    """(G, C, L, Dt) prompts "[SOS] ctx_g (prefix-1 tokens) <name>." with a
    context per group, built as prompt modules do (broadcast over C)."""
    from mmpl.clip import build_class_tokens
    from mmpl.prompts.context import insert_context, shared_prefix_length
    tokens = build_class_tokens(clip, PREFIX_NAMES, prefix - 1)
    ctx = _rand(groups, 1, prefix - 1, clip.text_width, seed=seed)
    ctx.requires_grad_(grad)
    assert shared_prefix_length(ctx) == prefix
    return ctx, insert_context(ctx, tokens.prefix, tokens.suffix), \
        tokens.eot_index


@pytest.mark.parametrize('deep_kind', [None, 'shared', 'per_group'])
@pytest.mark.parametrize('chunk_size', [None, 3])
def test_shared_prefix_equals_full_sequences(deep_clip, deep_kind,
                                             chunk_size):
    """The [SOS] ctx prefix once per group + the class positions attending
    to it = every full sequence encoded on its own; gradients too."""
    clip, groups, prefix = deep_clip, 2, 4
    ctx, prompts, eot = _class_prompts(clip, groups, prefix, 40, grad=True)
    deep = None
    if deep_kind == 'shared':
        deep = [_rand(3, clip.text_width, seed=41)]
    elif deep_kind == 'per_group':
        deep = [_rand(groups, 3, clip.text_width, seed=42),
                _rand(groups, 2, clip.text_width, seed=43)]
    plans = []
    with clip.observe_text(plans.append):
        shared = clip.encode_class_prompts(prompts, eot, prefix, deep,
                                           chunk_size)
    # the prefix ran once: packed with the class rows (no chunks), or its
    # keys and values first (chunks)
    [plan] = plans
    ran = [(run.prefix_images, run.prefix, len(run.parts))
           for run in plan.runs if run.prefix_images]
    assert ran == [(groups, prefix, 0 if chunk_size else
                    len(set(eot.tolist())))]
    assert plan.runs[0].packed == (chunk_size is None)
    grad_shared, = torch.autograd.grad(shared.square().sum(), ctx)
    flat_deep = None if deep is None else [
        p if p.dim() == 2 else p.repeat_interleave(len(PREFIX_NAMES), 0)
        for p in deep]
    full = torch.stack([  # one sequence at a time, no sharing
        torch.cat([clip.encode_text(prompts[g, c:c + 1], eot[c:c + 1], None
                                    if flat_deep is None else
                                    [p if p.dim() == 2 else
                                     p[g * len(PREFIX_NAMES) + c][None]
                                     for p in flat_deep])
                   for c in range(len(PREFIX_NAMES))]) for g in range(groups)])
    torch.testing.assert_close(shared, full, atol=ATOL, rtol=0)
    grad_full, = torch.autograd.grad(full.square().sum(), ctx)
    torch.testing.assert_close(grad_shared, grad_full, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_shared_prefix_falls_back_when_it_cannot_apply(deep_clip):
    clip, prefix = deep_clip, 4
    _, prompts, eot = _class_prompts(clip, 1, prefix, 44)
    from mmpl.clip.text_plan import shares_prefix
    plans = []
    with clip.observe_text(plans.append):
        # deep prompts reaching past the prefix
        long_deep = [_rand(prefix, clip.text_width, seed=45)]
        torch.testing.assert_close(
            clip.encode_class_prompts(prompts, eot, prefix, long_deep),
            clip.encode_class_prompts(prompts, eot, 0, long_deep))
        # an EOT inside the prefix
        short = eot.clone()
        short[0] = prefix - 1
        assert not shares_prefix(clip.text, short, prefix, [])
    assert [plan.prefix_tokens for plan in plans] == [0, 0]


# -------------------------------------------------------- deep text prompts
@pytest.mark.parametrize('per_sequence', [False, True])
@torch.no_grad()
def test_deep_text_prompts_replace_positions_1_to_m(deep_clip, per_sequence):
    clip = deep_clip
    ids = clip.tokenize(SAME_LENGTH)
    eot = clip.eot_index(ids)
    assert len(set(eot.tolist())) == 1
    n, m, dt = len(SAME_LENGTH), 2, clip.text_width
    emb = clip.embed_tokens(ids)
    shape = (n, m, dt) if per_sequence else (m, dt)
    deep = [_rand(*shape, seed=10 + i) for i in range(2)]  # layers 1, 2
    inputs, outputs, handles = record_blocks(clip.model.transformer.resblocks)
    try:
        feats = clip.encode_text(emb, eot, deep)
    finally:
        for h in handles:
            h.remove()
    assert len(inputs) == 4
    length = int(eot.max()) + 1
    pos = clip.model.positional_embedding[:length]
    # layer 0: the shallow input, nothing replaced
    torch.testing.assert_close(inputs[0], emb[:, :length] + pos)
    for i in (1, 2):
        expected = deep[i - 1].expand(n, m, dt)
        assert torch.equal(inputs[i][:, 1:1 + m], expected)
        # every other position is the previous block's output
        assert torch.equal(inputs[i][:, :1], outputs[i - 1][:, :1])
        assert torch.equal(inputs[i][:, 1 + m:], outputs[i - 1][:, 1 + m:])
    # after layer J-1 = 2 nothing is replaced
    assert torch.equal(inputs[3], outputs[2])
    # and the result equals the straightforward full-length reference
    ref = _reference_text(clip, emb, eot,
                          [p.expand(n, m, dt) for p in deep])
    torch.testing.assert_close(feats, ref, atol=ATOL, rtol=0)


@torch.no_grad()
def test_deep_text_prompts_shared_equals_expanded(deep_clip):
    ids = deep_clip.tokenize(TEXTS)
    eot = deep_clip.eot_index(ids)
    emb = deep_clip.embed_tokens(ids)
    shared = [_rand(3, 64, seed=20)]
    expanded = [shared[0].expand(len(TEXTS), -1, -1).clone()]
    a = deep_clip.encode_text(emb, eot, shared)
    torch.testing.assert_close(a, deep_clip.encode_text(emb, eot, expanded))
    assert not torch.allclose(a, deep_clip.encode_text(emb, eot), atol=1e-3)


@pytest.mark.parametrize('chunk_size', [1, 2, 3])
@torch.no_grad()
def test_chunked_text_equals_unchunked(deep_clip, chunk_size):
    ids = deep_clip.tokenize(TEXTS)
    eot = deep_clip.eot_index(ids)
    emb = deep_clip.embed_tokens(ids)
    deep = [_rand(len(TEXTS), 2, 64, seed=30), _rand(2, 64, seed=31)]
    full = deep_clip.encode_text(emb, eot, deep)
    chunked = deep_clip.encode_text(emb, eot, deep, chunk_size=chunk_size)
    torch.testing.assert_close(chunked, full, atol=ATOL, rtol=0)


def test_deep_text_prompt_errors(tiny_clip):
    ids = tiny_clip.tokenize(TEXTS[:2])
    eot = tiny_clip.eot_index(ids)
    emb = tiny_clip.embed_tokens(ids)
    with pytest.raises(ValueError, match='deep text prompt layers'):
        tiny_clip.encode_text(emb, eot, [_rand(2, 64)] * 2)  # 2 layers only
    with pytest.raises(ValueError, match='3 sequences'):
        tiny_clip.encode_text(emb, eot, [_rand(3, 2, 64)])


def test_grad_checkpointing_matches(deep_archs):
    torch.manual_seed(4)
    a = FrozenCLIP(arch=DEEP_ARCH)
    b = FrozenCLIP(arch=DEEP_ARCH, grad_checkpointing=True)
    b.model.load_state_dict(a.model.state_dict())
    ids = a.tokenize(TEXTS)
    eot = a.eot_index(ids)
    ctx = nn.Parameter(_rand(2, 64, seed=40) * 0.02)
    grads = []
    for clip in (a, b):
        ctx.grad = None
        emb = clip.embed_tokens(ids)
        emb = torch.cat([emb[:, :1], ctx.expand(len(TEXTS), -1, -1),
                         emb[:, 3:]], 1)
        clip.encode_text(emb, eot).sum().backward()
        grads.append(ctx.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------ step-wise towers
@torch.no_grad()
def test_towers_advanced_block_by_block_equal_the_full_run(deep_clip,
                                                           tiny_images):
    """The two towers stepped one block at a time, interleaved (what
    DGPrompt's mutual guidance needs), with deep prompts in both, give the
    encoders' results."""
    from mmpl.clip.towers import text_deep_prompts, visual_deep_prompts
    clip = deep_clip
    text, visual = clip.text, clip.visual
    assert text.layers == visual.layers == 4
    ids = clip.tokenize(SAME_LENGTH)
    eot = clip.eot_index(ids)
    emb = clip.embed_tokens(ids)[:, :int(eot.max()) + 1]
    deep_text = [_rand(2, 64, seed=70), _rand(2, 64, seed=71)]
    shallow = _rand(2, 2, 64, seed=72)  # per image
    deep_visual = [_rand(2, 64, seed=73)]
    text_hook = text_deep_prompts(deep_text)
    visual_hook = visual_deep_prompts(deep_visual, 2)
    t, v = text.embed(emb), visual.embed(tiny_images, shallow)
    for i in range(text.layers):
        t = text.run(t, i, i + 1, before_block=text_hook)
        v = visual.run(v, i, i + 1, before_block=visual_hook)
    torch.testing.assert_close(text.head(t, eot),
                               clip.encode_text(emb, eot, deep_text),
                               atol=ATOL, rtol=0)
    torch.testing.assert_close(
        visual.head(v, 2), clip.encode_image(tiny_images, shallow,
                                             deep_visual), atol=ATOL, rtol=0)
    # a split anywhere: run(0, k) then run(k, end) is the full run
    x = text.embed(emb)
    full = text.run(x, before_block=text_hook)
    for k in range(text.layers + 1):
        torch.testing.assert_close(
            text.run(text.run(x, 0, k, text_hook), k, None, text_hook), full,
            atol=0, rtol=0)


# ------------------------------------------------------ deep visual prompts
@pytest.mark.parametrize('per_image', [False, True])
@torch.no_grad()
def test_deep_visual_prompts_replace_last_tokens(deep_clip, tiny_images,
                                                 per_image):
    clip = deep_clip
    visual = clip.model.visual
    b, mv, dv = tiny_images.shape[0], 3, clip.vision_width
    shape = (b, mv, dv) if per_image else (mv, dv)
    shallow = _rand(*shape, seed=50)
    deep = [_rand(*shape, seed=51 + i) for i in range(2)]  # layers 1, 2
    n_tokens = 1 + (224 // 32)**2
    inputs, outputs, handles = record_blocks(visual.transformer.resblocks)
    try:
        pooled, tokens = clip.encode_image(tiny_images, shallow, deep,
                                           return_tokens=True)
    finally:
        for h in handles:
            h.remove()
    assert all(x.shape == (b, n_tokens + mv, dv) for x in inputs.values())
    # layer 0: prompts appended after the patch tokens, before ln_pre
    torch.testing.assert_close(inputs[0][:, n_tokens:],
                               visual.ln_pre(shallow.expand(b, mv, dv)))
    torch.testing.assert_close(inputs[0][:, :n_tokens],
                               visual._embeds(tiny_images), atol=ATOL, rtol=0)
    for i in (1, 2):
        assert torch.equal(inputs[i][:, n_tokens:],
                           deep[i - 1].expand(b, mv, dv))
        assert torch.equal(inputs[i][:, :n_tokens],
                           outputs[i - 1][:, :n_tokens])
    assert torch.equal(inputs[3], outputs[2])  # nothing after layer J-1
    # prompt tokens are dropped before pooling
    assert tokens.shape == (b, n_tokens, clip.embed_dim)
    ref_tokens = visual.ln_post(outputs[3][:, :n_tokens]) @ visual.proj
    torch.testing.assert_close(tokens, ref_tokens, atol=ATOL, rtol=0)
    torch.testing.assert_close(pooled, ref_tokens[:, 0], atol=ATOL, rtol=0)
    # the prompts do change the feature
    assert not torch.allclose(pooled, clip.encode_image(tiny_images),
                              atol=1e-4)


@torch.no_grad()
def test_per_image_visual_prompts_equal_single_image(deep_clip, tiny_images):
    prompts = _rand(2, 2, 64, seed=60)
    deep = [_rand(2, 2, 64, seed=61)]
    both = deep_clip.encode_image(tiny_images, prompts, deep)
    for b in range(2):
        one = deep_clip.encode_image(tiny_images[b:b + 1], prompts[b],
                                     [deep[0][b]])
        torch.testing.assert_close(both[b:b + 1], one, atol=ATOL, rtol=0)


def test_visual_prompt_errors(tiny_clip, tiny_images):
    with pytest.raises(ValueError, match='layer-0 visual prompts'):
        tiny_clip.encode_image(tiny_images, None, [_rand(2, 64)])
    with pytest.raises(ValueError, match='layer-0 count 2'):
        tiny_clip.encode_image(tiny_images, _rand(2, 64), [_rand(3, 64)])
    with pytest.raises(ValueError, match='deep visual prompt layers'):
        tiny_clip.encode_image(tiny_images, _rand(2, 64), [_rand(2, 64)] * 2)


# ------------------------------------------------------------ module plumbing
def test_clip_weights_frozen_and_outside_module_tree(tiny_clip):
    assert list(tiny_clip.parameters()) == []
    assert tiny_clip.state_dict() == {}
    assert all(not p.requires_grad for p in tiny_clip.model.parameters())
    assert not tiny_clip.model.training


def test_apply_follows_dtype_and_train_keeps_eval():
    clip = FrozenCLIP(arch='mmpl-tiny-vit')
    clip.train()
    assert not clip.model.training
    clip.double()
    assert clip.model.logit_scale.dtype == torch.float64
    assert clip.dtype == torch.float64
    ids = clip.tokenize(['a dog'])
    with torch.no_grad():
        assert clip.encode_token_ids(ids).dtype == torch.float64


# -------------------------------------------------------------------- builder
def test_unknown_arch_suggests_close_names():
    with pytest.raises(CLIPBuildError) as exc:
        check_arch('ViT-B-61')
    msg = one_line(exc)
    assert "'ViT-B-61'" in msg and 'ViT-B-16' in msg
    with pytest.raises(CLIPBuildError):
        FrozenCLIP(arch='vitb16')
    # a user error is a ValueError (one-line error reporting)
    assert issubclass(CLIPBuildError, ValueError)


def test_missing_weight_file_names_path(tmp_path):
    path = str(tmp_path / 'ckpt' / 'ViT-B-16.pt')
    with pytest.raises(CLIPBuildError) as exc:
        build_open_clip('mmpl-tiny-vit', path, quick_gelu=False)
    msg = one_line(exc)
    assert path in msg and 'mmpl-tiny-vit' in msg


def test_unknown_pretrained_tag_lists_tags():
    with pytest.raises(CLIPBuildError) as exc:
        build_open_clip('ViT-B-16', 'opnai')
    msg = one_line(exc)
    assert "'opnai'" in msg and 'openai' in msg


@pytest.fixture(scope='module')
def saved_tiny(tmp_path_factory):
    """A tiny model and its state dict written by torch.save."""
    torch.manual_seed(9)
    model = open_clip.create_model('mmpl-tiny-vit')
    model.eval()
    path = str(tmp_path_factory.mktemp('w') / 'tiny.pt')
    torch.save(model.state_dict(), path)
    return model, path


def test_local_state_dict_needs_quick_gelu(saved_tiny):
    _, path = saved_tiny
    with pytest.raises(CLIPBuildError) as exc:
        FrozenCLIP(arch='mmpl-tiny-vit', pretrained=path)
    msg = one_line(exc)
    assert 'quick_gelu=True' in msg and 'quick_gelu=False' in msg


def test_local_state_dict_is_not_taken_for_torchscript(saved_tiny):
    _, path = saved_tiny
    assert not clip_builder._is_torchscript_archive(path)


@torch.no_grad()
def test_local_state_dict_loads_exactly(saved_tiny, tiny_images):
    model, path = saved_tiny
    clip = FrozenCLIP(arch='mmpl-tiny-vit', pretrained=path,
                      quick_gelu=False)
    for (k, a), (_, b) in zip(model.state_dict().items(),
                              clip.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert isinstance(clip.model.transformer.resblocks[0].mlp.gelu, nn.GELU)
    ids = clip.tokenize(TEXTS)
    torch.testing.assert_close(clip.encode_token_ids(ids),
                               model.encode_text(ids), atol=ATOL, rtol=0)
    torch.testing.assert_close(clip.encode_image(tiny_images),
                               model.encode_image(tiny_images), atol=ATOL,
                               rtol=0)


def test_local_safetensors_loads(saved_tiny, tmp_path):
    safetensors = pytest.importorskip('safetensors.torch')
    model, _ = saved_tiny
    path = str(tmp_path / 'tiny.safetensors')
    safetensors.save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, path)
    clip = FrozenCLIP(arch='mmpl-tiny-vit', pretrained=path, quick_gelu=True)
    assert torch.equal(clip.model.text_projection, model.text_projection)
    assert isinstance(clip.model.transformer.resblocks[0].mlp.gelu,
                      open_clip.transformer.QuickGELU)


def test_openai_forces_quick_gelu():
    resolve = clip_builder._resolve_quick_gelu
    assert resolve('ViT-B-16', 'openai', None, False, False) is True
    assert resolve('ViT-B-16', 'openai', True, False, False) is True
    # an OpenAI TorchScript archive, even from a local path
    assert resolve('ViT-B-16', '/w/ViT-B-16.pt', None, True, True) is True
    with pytest.raises(CLIPBuildError, match='QuickGELU'):
        resolve('ViT-B-16', 'openai', False, False, False)
    assert resolve('ViT-B-16', None, None, False, False) is False
    assert resolve('ViT-B-16-quickgelu', '/w/x.bin', None, False, True) \
        is False  # the architecture already says QuickGELU


class _CreateModelSpy:
    """Replaces open_clip.create_model: records the call, no download."""

    def __init__(self, fail=False):
        self.calls, self.fail = [], fail

    def __call__(self, arch, pretrained=None, **kwargs):
        self.calls.append(dict(arch=arch, pretrained=pretrained, **kwargs))
        if self.fail and pretrained is not None:
            raise RuntimeError('Failed to download file (network is down)\n'
                               'second line')
        return _REAL_CREATE('mmpl-tiny-vit')


_REAL_CREATE = open_clip.create_model


def _spy_create(monkeypatch, fail=False) -> _CreateModelSpy:
    """open_clip.create_model replaced by a spy, and the host reachability
    check (tested in test_user_errors.py) skipped: the build runs as if the
    weights were reachable, with no network."""
    from mmpl.clip import builder
    spy = _CreateModelSpy(fail=fail)
    monkeypatch.setattr(open_clip, 'create_model', spy)
    monkeypatch.setattr(builder, '_check_reachable', lambda *args: None)
    return spy


def test_openai_tag_builds_with_quick_gelu_without_network(monkeypatch):
    spy = _spy_create(monkeypatch)
    model = build_open_clip('ViT-B-16', 'openai')
    assert spy.calls[-1]['pretrained'] == 'openai'
    assert spy.calls[-1]['force_quick_gelu'] is True
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())


def test_download_failure_is_one_actionable_line(monkeypatch):
    _spy_create(monkeypatch, fail=True)
    with pytest.raises(CLIPBuildError) as exc:
        build_open_clip('ViT-B-16', 'openai')
    msg = one_line(exc)
    assert 'ViT-B-16/openai' in msg and 'pretrained' in msg


@pytest.mark.parametrize('arch,tag', [('ViT-B-32', 'laion400m_e31'),
                                      ('ViT-B-16', 'metaclip_400m')])
def test_every_quickgelu_tag_forces_quick_gelu(monkeypatch, arch, tag):
    spy = _spy_create(monkeypatch)
    build_open_clip(arch, tag)
    assert spy.calls[-1]['force_quick_gelu'] is True


def test_contradicting_quick_gelu_is_not_silently_ignored(deep_archs,
                                                          saved_tiny):
    _, path = saved_tiny
    try:
        clip = FrozenCLIP(arch=QUICKGELU_ARCH, pretrained=path,
                          quick_gelu=False)
    except CLIPBuildError:
        return  # a clear error is fine
    assert isinstance(clip.model.transformer.resblocks[0].mlp.gelu, nn.GELU)
