"""Tests of the class-prompt layout (mmpl.clip.class_tokens) and the prompt
modules CoOp and CoCoOp (mmpl.prompts), against per-class Python references
written like the original CoOp/CoCoOp code."""
import pytest
import torch
from torch import nn

from mmpl.clip import build_class_tokens, context_init_embedding
from mmpl.prompts import CoCoOp, CoOp, FrozenImageFeatures, class_token_layout
from mmpl.prompts.context import insert_context

CLASSES = ['Forest', 'Sea_or_Lake', 'Annual Crop Land', 'x',
           'Herbaceous Vegetation Land']
SOT, EOT = 49406, 49407


def _name_ids(clip, name):
    return clip.tokenizer.encode(name.replace('_', ' '))


# ------------------------------------------------------------- class tokens
@pytest.mark.parametrize('n_ctx', [1, 4, 7])
def test_build_class_tokens_layout(tiny_clip, n_ctx):
    ct = build_class_tokens(tiny_clip, CLASSES, n_ctx)
    x_id = tiny_clip.tokenizer.encode('X')[0]
    lengths = [len(_name_ids(tiny_clip, n)) for n in CLASSES]
    assert ct.name_lengths.tolist() == lengths
    assert ct.n_ctx == n_ctx and ct.num_classes == len(CLASSES)
    # EOT = argmax of the ids, sequences cut after the last EOT
    assert torch.equal(ct.eot_index, ct.token_ids.argmax(-1))
    assert ct.token_ids.shape[1] == int(ct.eot_index.max()) + 1
    for c, name in enumerate(CLASSES):
        ids = ct.token_ids[c].tolist()
        n = lengths[c]
        assert ids[0] == SOT
        assert ids[1:1 + n_ctx] == [x_id] * n_ctx  # placeholders 1..M
        assert ids[1 + n_ctx:1 + n_ctx + n] == _name_ids(tiny_clip, name)
        assert ids[1 + n_ctx + n] == tiny_clip.tokenizer.encode('.')[0]
        assert ids[1 + n_ctx + n + 1] == EOT
        assert int(ct.eot_index[c]) == 1 + n_ctx + n + 1
    # frozen embeddings of exactly these ids; prefix / suffix split
    torch.testing.assert_close(
        ct.embeddings, tiny_clip.model.token_embedding(ct.token_ids))
    assert ct.prefix.shape == (len(CLASSES), 1, tiny_clip.text_width)
    assert ct.suffix.shape[1] == ct.token_ids.shape[1] - 1 - n_ctx
    # the same EOT as tokenizing the whole 77-token prompt
    full = tiny_clip.tokenize(
        [' '.join(['X'] * n_ctx) + ' ' + n.replace('_', ' ') + '.'
         for n in CLASSES])
    assert torch.equal(ct.eot_index, full.argmax(-1))


def test_build_class_tokens_too_long(tiny_clip):
    with pytest.raises(ValueError, match='longer than the text context'):
        build_class_tokens(tiny_clip, ['word ' * 80, 'dog'], 4)


# ------------------------------------------------------ class token layout
def _reference_layout(ctx, tokens, name_lengths, n_ctx, position):
    """CoOp's original per-class loop (PromptLearner.forward)."""
    out = []
    half = n_ctx // 2
    for c in range(tokens.shape[0]):
        n = int(name_lengths[c])
        prefix = tokens[c, :1]
        class_c = tokens[c, 1 + n_ctx:1 + n_ctx + n]
        suffix_c = tokens[c, 1 + n_ctx + n:]
        ctx_c = ctx[c]
        if position == 'end':
            out.append(torch.cat([prefix, ctx_c, tokens[c, 1 + n_ctx:]]))
        elif position == 'middle':
            out.append(torch.cat([prefix, ctx_c[:half], class_c,
                                  ctx_c[half:], suffix_c]))
        else:
            out.append(torch.cat([prefix, class_c, ctx_c, suffix_c]))
    return torch.stack(out)


@pytest.mark.parametrize('position', ['end', 'middle', 'front'])
@pytest.mark.parametrize('n_ctx', [1, 2, 3, 4])
def test_class_token_layout_matches_coop_loop(tiny_clip, position, n_ctx):
    ct = build_class_tokens(tiny_clip, CLASSES, n_ctx)
    c, length = ct.token_ids.shape
    # features that identify their source: token ids, and negative ctx ids
    tokens = ct.token_ids.unsqueeze(-1).double()  # (C, L, 1)
    ctx = -1 - torch.arange(c * n_ctx).view(c, n_ctx, 1).double()
    index = class_token_layout(ct.name_lengths, n_ctx, length, position)
    assert index.shape == (c, length)
    got = torch.cat([ctx, tokens], 1).gather(1, index.unsqueeze(-1))
    ref = _reference_layout(ctx, tokens, ct.name_lengths, n_ctx, position)
    assert torch.equal(got, ref)
    # the EOT stays where it was
    got_ids = got[..., 0]
    assert torch.equal(got_ids.argmax(-1), ct.eot_index)
    assert (got_ids[torch.arange(c), ct.eot_index] == EOT).all()


@pytest.mark.parametrize('position', ['end', 'middle', 'front'])
@pytest.mark.parametrize('class_specific', [False, True])
def test_coop_forward_matches_reference(tiny_clip, position, class_specific):
    torch.manual_seed(0)
    coop = CoOp(tiny_clip, n_ctx=3, ctx_init=None,
                class_specific=class_specific,
                num_classes=len(CLASSES) if class_specific else None,
                class_token_position=position)
    ct = build_class_tokens(tiny_clip, CLASSES, 3)
    out = coop(ct)
    c, length, dt = ct.embeddings.shape
    assert out.embeddings.shape == (1, c, length, dt)
    assert torch.equal(out.eot_index, ct.eot_index)
    assert not out.image_conditioned
    ctx = coop.ctx if class_specific else coop.ctx.expand(c, -1, -1)
    ref = _reference_layout(ctx, ct.embeddings, ct.name_lengths, 3, position)
    torch.testing.assert_close(out.embeddings[0], ref, atol=0, rtol=0)


def test_coop_end_writes_ctx_after_sos(tiny_clip):
    coop = CoOp(tiny_clip, n_ctx=4, ctx_init='a photo of a')
    ct = build_class_tokens(tiny_clip, CLASSES, 4)
    emb = coop(ct).embeddings[0]
    # ctx_init = embedding of 'a photo of a'
    ids = tiny_clip.tokenize(['a photo of a'])[0, 1:5]
    torch.testing.assert_close(coop.ctx.data,
                               tiny_clip.model.token_embedding(ids))
    # prompts equal the frozen embedding of 'a photo of a <name>.'
    texts = ['a photo of a ' + n.replace('_', ' ') + '.' for n in CLASSES]
    ref = tiny_clip.model.token_embedding(
        tiny_clip.tokenize(texts)[:, :emb.shape[1]])
    torch.testing.assert_close(emb, ref)


def test_coop_grad_reaches_ctx(tiny_clip):
    coop = CoOp(tiny_clip, n_ctx=2, ctx_init=None, class_specific=True,
                num_classes=len(CLASSES), class_token_position='middle')
    ct = build_class_tokens(tiny_clip, CLASSES, 2)
    out = coop(ct)
    g = tiny_clip.encode_text(out.embeddings[0], out.eot_index)
    g.pow(2).sum().backward()
    assert coop.ctx.grad is not None
    assert (coop.ctx.grad.abs().sum((1, 2)) > 0).all()  # every class


def test_coop_init_and_options(tiny_clip):
    torch.manual_seed(0)
    coop = CoOp(tiny_clip, n_ctx=16)
    assert coop.ctx.shape == (16, tiny_clip.text_width)
    assert abs(coop.ctx.std().item() - 0.02) < 0.003
    csc = CoOp(tiny_clip, n_ctx=4, ctx_init='a photo of a',
               class_specific=True, num_classes=5)
    assert csc.ctx.shape == (5, 4, tiny_clip.text_width)
    assert torch.equal(csc.ctx[0], csc.ctx[4])
    assert isinstance(csc.ctx, nn.Parameter) and csc.ctx.requires_grad
    with pytest.raises(ValueError, match='num_classes'):
        CoOp(tiny_clip, n_ctx=4, class_specific=True)
    with pytest.raises(ValueError, match='class_token_position'):
        CoOp(tiny_clip, n_ctx=4, class_token_position='start')


def test_coop_csc_on_other_class_count(tiny_clip):
    csc = CoOp(tiny_clip, n_ctx=2, class_specific=True, num_classes=5)
    with pytest.raises(ValueError, match=r'5 classes.*has 3'):
        csc(build_class_tokens(tiny_clip, CLASSES[:3], 2))


@pytest.mark.parametrize('ctx_init,n_ctx', [('a photo of a', 5),
                                            ('a photo', 4)])
def test_ctx_init_shorter_than_n_ctx(tiny_clip, ctx_init, n_ctx):
    with pytest.raises(ValueError, match='ctx_init.*fewer than n_ctx'):
        CoOp(tiny_clip, n_ctx=n_ctx, ctx_init=ctx_init)
    with pytest.raises(ValueError, match='ctx_init.*fewer than n_ctx'):
        CoCoOp(tiny_clip, n_ctx=n_ctx, ctx_init=ctx_init)


@pytest.mark.parametrize('n_ctx', [2, 3, 4])
def test_ctx_init_words_beyond_n_ctx_stay_frozen(tiny_clip, n_ctx):
    """The authors' layout (MaPLe: M=2, 'a photo of a'): the class prompt is
    the phrase and the name; the first M tokens are the context, the rest
    of the phrase stays as frozen tokens. The token ids equal the
    tokenization of 'a photo of a <name>.' (CoOp/CoCoOp: M=4, all
    learnable)."""
    coop = CoOp(tiny_clip, n_ctx=n_ctx, ctx_init='a photo of a')
    ct = build_class_tokens(tiny_clip, CLASSES, n_ctx, coop.context_phrase)
    full = tiny_clip.tokenize(
        [f'a photo of a {c.replace("_", " ")}.' for c in CLASSES])
    assert torch.equal(ct.token_ids, full[:, :ct.token_ids.shape[1]])
    assert ct.n_frozen_context == 4 - n_ctx
    prompts = coop(ct).embeddings[0]  # (C, L, Dt)
    words = tiny_clip.embed_tokens(full)[:, :ct.token_ids.shape[1]]
    assert torch.equal(prompts[:, 1:1 + n_ctx],
                       coop.ctx.unsqueeze(0).expand(len(CLASSES), -1, -1))
    assert torch.equal(prompts[:, 1 + n_ctx:], words[:, 1 + n_ctx:])
    assert torch.equal(coop.ctx.data, words[0, 1:1 + n_ctx])
    # the frozen words are the same for every class: part of the shared prefix
    assert coop(ct).shared_prefix == 5


def test_ctx_init_underscores_are_spaces(tiny_clip):
    a = CoOp(tiny_clip, n_ctx=2, ctx_init='a_photo_of_a')
    b = CoOp(tiny_clip, n_ctx=2, ctx_init='a photo of a')
    assert torch.equal(a.ctx, b.ctx)
    ta = build_class_tokens(tiny_clip, CLASSES, 2, a.context_phrase)
    tb = build_class_tokens(tiny_clip, CLASSES, 2, b.context_phrase)
    assert torch.equal(ta.token_ids, tb.token_ids)


def test_frozen_phrase_words_need_class_token_at_the_end(tiny_clip):
    with pytest.raises(ValueError, match="class_token_position='end'"):
        CoOp(tiny_clip, n_ctx=2, ctx_init='a photo of a',
             class_token_position='middle')
    CoOp(tiny_clip, n_ctx=4, ctx_init='a photo of a',
         class_token_position='middle')


def test_context_init_embedding_right_count(tiny_clip):
    e = context_init_embedding(tiny_clip, 'a photo of a', 4)
    assert e.shape == (4, tiny_clip.text_width)


@pytest.mark.parametrize('n_ctx', [0, -1, 75, 100, 2.0])
def test_n_ctx_out_of_range(tiny_clip, n_ctx):
    with pytest.raises(ValueError, match='n_ctx'):
        CoOp(tiny_clip, n_ctx=n_ctx, ctx_init=None)
    with pytest.raises(ValueError, match='n_ctx'):
        CoCoOp(tiny_clip, n_ctx=n_ctx, ctx_init=None)


def test_insert_context_shapes():
    prefix = torch.zeros(3, 1, 2)
    suffix = torch.ones(3, 5, 2)
    assert insert_context(torch.randn(4, 2), prefix, suffix).shape == (
        1, 3, 10, 2)
    assert insert_context(torch.randn(3, 4, 2), prefix, suffix).shape == (
        1, 3, 10, 2)
    per_image = torch.randn(6, 1, 4, 2)
    out = insert_context(per_image, prefix, suffix)
    assert out.shape == (6, 3, 10, 2)
    assert torch.equal(out[:, 2, 1:5], per_image[:, 0])


# ------------------------------------------------------------------- CoCoOp
@pytest.fixture(scope='module')
def cocoop_and_tokens(tiny_clip):
    torch.manual_seed(0)
    cocoop = CoCoOp(tiny_clip, n_ctx=4, ctx_init='a photo of a')
    # make the shift non-trivial
    for p in cocoop.meta_net.parameters():
        nn.init.normal_(p, std=0.5)
    return cocoop, build_class_tokens(tiny_clip, CLASSES, 4)


def test_cocoop_meta_net_shape(tiny_clip):
    cocoop = CoCoOp(tiny_clip, n_ctx=4)
    lin1, relu, lin2 = cocoop.meta_net
    d, dt = tiny_clip.embed_dim, tiny_clip.text_width
    assert (lin1.in_features, lin1.out_features) == (d, d // 16)
    assert isinstance(relu, nn.ReLU)
    assert (lin2.in_features, lin2.out_features) == (d // 16, dt)


@torch.no_grad()
def test_cocoop_shift_same_for_every_class_and_ctx_token(
        cocoop_and_tokens, tiny_clip):
    cocoop, ct = cocoop_and_tokens
    f0 = torch.randn(3, tiny_clip.embed_dim)
    out = cocoop(ct, FrozenImageFeatures(f0))
    c, length, dt = ct.embeddings.shape
    assert out.embeddings.shape == (3, c, length, dt)
    assert out.image_conditioned
    delta = out.embeddings[:, :, 1:5] - cocoop.ctx  # (B, C, M, Dt)
    # the same shift for every class and every ctx token of an image ...
    torch.testing.assert_close(delta, delta[:, :1, :1].expand_as(delta))
    # ... equal to meta_net(normalised f0)
    shift = cocoop.meta_net(f0 / f0.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(delta[:, 0, 0], shift)
    # different images, different prompts
    assert not torch.allclose(delta[0, 0, 0], delta[1, 0, 0])
    # everything but the ctx slots is the frozen class embedding
    assert torch.equal(out.embeddings[:, :, :1],
                       ct.prefix.unsqueeze(0).expand(3, -1, -1, -1))
    assert torch.equal(out.embeddings[:, :, 5:],
                       ct.suffix.unsqueeze(0).expand(3, -1, -1, -1))
    # the shift does not depend on the scale of f0 (normalised input)
    out2 = cocoop(ct, FrozenImageFeatures(f0 * 7.0))
    torch.testing.assert_close(out2.embeddings, out.embeddings)


def test_cocoop_needs_image(cocoop_and_tokens):
    cocoop, ct = cocoop_and_tokens
    with pytest.raises(ValueError, match='image'):
        cocoop(ct)


def test_cocoop_grads_reach_ctx_and_meta_net(tiny_clip):
    cocoop = CoCoOp(tiny_clip, n_ctx=4)
    ct = build_class_tokens(tiny_clip, CLASSES[:3], 4)
    out = cocoop(ct, FrozenImageFeatures(torch.randn(2, tiny_clip.embed_dim)))
    g = tiny_clip.encode_text(out.embeddings.flatten(0, 1),
                              out.eot_index.repeat(2))
    g.pow(2).sum().backward()
    for name, p in cocoop.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
