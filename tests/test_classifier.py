"""Tests of PromptCLIPClassifier: modes, class switching, caching of text
features and anchors, gradients reaching only prompt parameters, checkpoint
mismatch errors, and CoCoOp's batched pass against a per-image loop."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from mmpl.clip import build_class_tokens
from mmpl.models import PromptCLIPClassifier
from mmpl.prompts import FrozenImageFeatures
from mmpl.utils.errors import CheckpointError, ConfigError
from helpers import build_classifier, one_line, samples, text_plans

CLASSES5 = ['Forest', 'Sea_or_Lake', 'Annual Crop Land', 'River', 'Highway']
CLASSES3 = ['dog', 'cat', 'red fox']
TINY = dict(arch='mmpl-tiny-vit')
COOP = dict(type='CoOp', n_ctx=4, ctx_init='a photo of a')
COCOOP = dict(type='CoCoOp', n_ctx=4, ctx_init='a photo of a')


def build(text_prompt=COOP, classnames=CLASSES5, **kwargs):
    return build_classifier(text_prompt, classnames, **kwargs)


@pytest.fixture(scope='module')
def images():
    return torch.randn(3, 3, 224, 224,
                       generator=torch.Generator().manual_seed(7))


@pytest.fixture(scope='module')
def coop_model():
    """Read-only CoOp model (eval mode): tests must not mutate it."""
    model = build()
    model.eval()
    return model


class CallCounter:
    """Wraps a bound method and counts calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def zero_shot_logits(model, images, classnames, template='a photo of a {}.'):
    """Plain open_clip zero-shot logits, the reference for CoOp at init."""
    clip = model.clip.model
    with torch.no_grad():
        f = clip.encode_image(images)
        ids = model.clip.tokenize(
            [template.format(n.replace('_', ' ')) for n in classnames])
        g = clip.encode_text(ids)
    return clip.logit_scale.exp() * F.normalize(f, dim=-1) @ F.normalize(
        g, dim=-1).t()


# ---------------------------------------------------------------------- modes
def test_registered_and_built(coop_model):
    assert isinstance(coop_model, PromptCLIPClassifier)
    assert MODELS.get('PromptCLIPClassifier') is PromptCLIPClassifier
    assert coop_model.classnames == tuple(CLASSES5)


# ------------------------------------------------------------------- needs
def test_needs_are_merged_once_at_build():
    """The modules' declarations decide what the pipeline computes: the
    frozen pass (and its tokens) and the anchors; losses add theirs in
    training only (anchors stay requested in evaluation)."""
    from mmpl.structures import Needs
    assert build().needs == Needs()
    assert build(COCOOP).needs == Needs(frozen_image=True)
    # a tuner's tokens come from the frozen pass when it is the image pass
    assert build(feature_tuner=dict(type='TFT', dense='tokens')).needs == \
        Needs(frozen_image=True, image_tokens=True)
    # ... with the readout it asks for (the value path by default)
    assert build(feature_tuner=dict(type='TFT')).needs == Needs(
        frozen_image=True, value_tokens=True)
    # ... and from the prompted pass when there are visual prompts
    with_vp = build(COCOOP, visual_prompt=dict(type='TVP'),
                    feature_tuner=dict(type='TFT'))
    assert with_vp.needs == Needs(frozen_image=True)
    retained = build(extra_losses=[dict(type='LogitRetentionLoss')])
    retained.train()
    assert retained.needs == Needs(frozen_image=True, anchors=True)
    retained.eval()
    assert retained.needs == Needs(anchors=True)


def _modules_without_needs() -> dict:
    """The classifier's argument -> a module class of that kind that does
    not declare ``needs``."""
    from mmpl.losses import BaseExtraLoss
    from mmpl.prompts import BaseFeatureTuner, BaseTextPrompt, BaseVisualPrompt

    class NoNeedsText(BaseTextPrompt):
        image_conditioned = True  # mmpl 0.1's protocol declares nothing

        def __init__(self, clip):
            super().__init__()

    class NoNeedsVisual(BaseVisualPrompt):
        needs_frozen_image = True

        def __init__(self, clip):
            super().__init__()

    class NoNeedsTuner(BaseFeatureTuner):
        needs_image_tokens = True

        def __init__(self, clip):
            super().__init__()

    class NoNeedsLoss(BaseExtraLoss):
        needs_anchors = True

    return dict(text_prompt=NoNeedsText, visual_prompt=NoNeedsVisual,
                feature_tuner=NoNeedsTuner, extra_losses=NoNeedsLoss)


@pytest.mark.parametrize('kind', ['text_prompt', 'visual_prompt',
                                  'feature_tuner', 'extra_losses'])
def test_a_module_without_needs_cannot_be_built(kind):
    """``needs`` is abstract in every base class: no default, and the
    attributes of mmpl 0.1 (``image_conditioned``, ``needs_*``) are not
    read any more. Building one fails, also through the registry."""
    cls = _modules_without_needs()[kind]
    message = (rf"Can't instantiate abstract class {cls.__name__} with "
               'abstract method needs$')
    with pytest.raises(TypeError, match='^' + message):
        cls('loss_x' if kind == 'extra_losses' else None)
    cfg = dict(type=cls)
    if kind == 'extra_losses':
        cfg = [dict(cfg, loss_name='loss_x')]
    with pytest.raises(TypeError, match=message):
        build(**{kind: cfg})


def test_needs_must_be_a_needs_and_losses_an_extra_loss():
    """The classifier refuses, at build time and in one line, a module
    whose ``needs`` is not a Needs and an extra loss of another kind."""
    from mmpl.prompts import CoOp

    class BoolNeeds(CoOp):
        needs = True

    with pytest.raises(ConfigError) as info:
        build(dict(COOP, type=BoolNeeds))
    assert one_line(info) == (
        'text_prompt=BoolNeeds declares needs=True; it must be a '
        'mmpl.structures.Needs, e.g. needs = Needs(anchors=True)')
    with pytest.raises(ConfigError, match=r'^extra_losses\[0\]=L1Loss is '
                       'not a BaseExtraLoss$'):
        build(extra_losses=[torch.nn.L1Loss()])


def test_the_contract_is_typed_on_the_base_classes():
    """n_ctx, context_phrase, produces_visual_prompts and encodes_jointly
    are declared (typed, documented) on BaseTextPrompt; the methods set
    or override them."""
    import typing

    from mmpl.prompts import BaseTextPrompt, CoOp, DGPrompt, ZeroShotCLIP
    from mmpl.structures import Needs
    assert BaseTextPrompt.__annotations__ == dict(
        n_ctx=int, context_phrase=typing.Optional[str],
        produces_visual_prompts=bool, encodes_jointly=bool)
    for name in BaseTextPrompt.__annotations__:
        assert f'        {name}: ' in BaseTextPrompt.__doc__, name
    coop = build().text_prompt
    assert (coop.n_ctx, coop.context_phrase, coop.encodes_jointly) == (
        4, 'a photo of a', False)
    assert (ZeroShotCLIP.n_ctx, ZeroShotCLIP.context_phrase) == (0, None)
    assert CoOp.needs == Needs() and isinstance(DGPrompt.encodes_jointly,
                                                property)


def test_a_text_prompt_with_visual_prompts_refuses_a_visual_prompt():
    """Raised when the classifier is built, not in the first forward."""
    for text_prompt in (dict(type='MaPLe', depth=2),
                        dict(type='DGPrompt', depth=2)):
        with pytest.raises(ValueError, match='already produces visual '
                           'prompts; drop visual_prompt=TVP'):
            build(text_prompt, visual_prompt=dict(type='TVP'))


@torch.no_grad()
def test_extract_feat_returns_image_features(coop_model, images):
    """mmpretrain's contract: features, (B, D); mode='tensor' has logits."""
    feats = coop_model.extract_feat(images)
    assert feats.shape == (3, coop_model.clip.embed_dim)
    torch.testing.assert_close(feats, coop_model.clip.encode_image(images),
                               atol=1e-5, rtol=0)
    assert coop_model(images, mode='tensor').shape == (3, len(CLASSES5))


@torch.no_grad()
def test_tensor_mode_equals_zero_shot_clip_at_init(coop_model, images):
    """CoOp initialised with 'a photo of a' is zero-shot CLIP."""
    logits = coop_model(images, mode='tensor')
    assert logits.shape == (3, 5)
    torch.testing.assert_close(
        logits, zero_shot_logits(coop_model, images, CLASSES5),
        atol=1e-4, rtol=0)


@torch.no_grad()
def test_predict_mode(coop_model, images):
    out = coop_model(images, samples([0, 1, 2]), mode='predict')
    assert len(out) == 3
    logits = zero_shot_logits(coop_model, images, CLASSES5)
    for b, ds in enumerate(out):
        assert ds.pred_score.shape == (5,)
        torch.testing.assert_close(ds.pred_score, logits[b].softmax(-1),
                                   atol=1e-5, rtol=0)
        assert int(ds.pred_label) == int(logits[b].argmax())
        assert int(ds.gt_label) == b
    assert len(coop_model.predict(images)) == 3  # without data samples


def test_loss_mode_and_invalid_mode():
    model = build()
    model.train()
    imgs = torch.randn(2, 3, 224, 224)
    losses = model(imgs, samples([4, 1]), mode='loss')
    assert set(losses) == {'loss_cls'}
    ref = F.cross_entropy(zero_shot_logits(model, imgs, CLASSES5),
                          torch.tensor([4, 1]))
    torch.testing.assert_close(losses['loss_cls'].detach(), ref, atol=1e-4,
                               rtol=0)
    assert losses['loss_cls'].requires_grad
    with pytest.raises(RuntimeError, match='Invalid mode'):
        model(imgs, mode='features')


def test_data_preprocessor_is_clip_normalisation():
    model = build()
    bgr = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    out = model.data_preprocessor(dict(inputs=[bgr]), False)['inputs'][0]
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)
    ref = (bgr.flip(0).float() / 255 - mean) / std  # BGR -> RGB
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=0)


# ----------------------------------------------------------------- class sets
@torch.no_grad()
def test_set_classes_switches_logits(images):
    model = build()
    model.eval()
    assert model(images).shape == (3, 5)
    model.set_classes(CLASSES3)
    logits = model(images)
    assert logits.shape == (3, 3)
    torch.testing.assert_close(
        logits, zero_shot_logits(model, images, CLASSES3), atol=1e-4, rtol=0)
    model.set_classes(CLASSES5)
    assert model(images).shape == (3, 5)


def test_missing_classes_is_clear_error(images):
    model = build(classnames=None)
    with pytest.raises(ConfigError, match='set_classes'):
        model(images)
    with pytest.raises(ValueError):
        model.set_classes([])


@torch.no_grad()
def test_text_features_cached_per_class_set_in_eval(images, monkeypatch):
    model = build()
    counter = CallCounter(model.clip.encode_class_prompts)
    monkeypatch.setattr(model.clip, 'encode_class_prompts', counter)
    model.eval()
    first = model(images)
    model.predict(images)
    assert counter.calls == 1  # once for the class set
    model.set_classes(CLASSES3)
    model.predict(images)
    model.predict(images)
    assert counter.calls == 2  # once for the new class set
    model.set_classes(CLASSES5)
    torch.testing.assert_close(model(images), first)
    assert counter.calls == 2  # still cached during this evaluation
    model.train()
    model(images)
    model(images)
    assert counter.calls == 4  # training: every forward
    model.eval()
    model(images)
    assert counter.calls == 5  # recomputed after train()


@torch.no_grad()
def test_eval_cache_invalidated_by_load_state_dict(images):
    model = build()
    model.eval()
    before = model(images)
    state = model.state_dict()
    state['text_prompt.ctx'] = torch.randn_like(state['text_prompt.ctx'])
    model.load_state_dict(state)
    fresh = build()  # the same random CLIP (seed 0)
    fresh.load_state_dict(state)
    fresh.eval()
    after = model(images)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, fresh(images))


@torch.no_grad()
def test_image_conditioned_text_features_not_cached(images, monkeypatch):
    model = build(COCOOP)
    counter = CallCounter(model.clip.encode_class_prompts)
    monkeypatch.setattr(model.clip, 'encode_class_prompts', counter)
    model.eval()
    model.predict(images)
    model.predict(images[:1])
    assert counter.calls == 2


@torch.no_grad()
def test_anchors_computed_once_per_class_set(monkeypatch):
    model = build(template='itap of a {}.')
    counter = CallCounter(model.clip.encode_token_ids)
    monkeypatch.setattr(model.clip, 'encode_token_ids', counter)
    a = model.class_anchors()
    b = model.class_anchors()
    assert counter.calls == 1 and a is b
    ids = model.clip.tokenize(
        ['itap of a ' + n.replace('_', ' ') + '.' for n in CLASSES5])
    torch.testing.assert_close(a, model.clip.model.encode_text(ids),
                               atol=1e-5, rtol=0)
    model.set_classes(CLASSES3)
    assert model.class_anchors().shape == (3, model.clip.embed_dim)
    assert counter.calls == 2
    model.set_classes(CLASSES5)
    model.class_anchors()
    assert counter.calls == 2  # cached per class set


def test_dataset_template_used_for_anchors_unless_configured():
    model = build()
    model.set_classes(CLASSES3, template='a satellite photo of {}.')
    assert model.anchor_template == 'a satellite photo of {}.'
    model.set_classes(CLASSES3)
    assert model.anchor_template == 'a photo of a {}.'
    configured = build(template='itap of a {}.')
    configured.set_classes(CLASSES3, template='a satellite photo of {}.')
    assert configured.anchor_template == 'itap of a {}.'


# ---------------------------------------------------- only prompts are trained
@pytest.mark.parametrize('text_prompt', [COOP, COCOOP])
def test_gradients_reach_only_prompt_parameters(text_prompt, images):
    model = build(text_prompt)
    model.train()
    assert not model.clip.model.training
    assert model.text_prompt.training
    losses = model.loss(images[:2], samples([0, 3]))
    losses['loss_cls'].backward()
    prompt_params = dict(model.text_prompt.named_parameters())
    assert prompt_params
    for name, p in prompt_params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for name, p in model.clip.model.named_parameters():
        assert not p.requires_grad and p.grad is None, name
    assert {id(p) for p in model.parameters()} == {
        id(p) for p in prompt_params.values()}
    keys = set(model.state_dict())
    assert keys == {
        'text_prompt.' + k for k in model.text_prompt.state_dict()}
    assert not any(k.startswith('clip.') for k in keys)


def test_checkpoint_meta_is_not_in_state_dict():
    """The rebuild meta lives in ``checkpoint['meta']['mmpl']`` only
    (PlainCheckpointHook); the state dict holds tensors only."""
    model = build()
    assert all(torch.is_tensor(v) for v in model.state_dict().values())
    meta = model.checkpoint_meta()
    assert meta['arch'] == 'mmpl-tiny-vit'
    assert meta['text_prompt'] == 'CoOp'
    assert meta['classes'] == CLASSES5


def test_old_checkpoint_with_extra_state_loads():
    src = build()
    state = dict(src.state_dict(), _extra_state=src.checkpoint_meta())
    dst = build(seed=1)
    dst.load_state_dict(state)  # strict: the old key is dropped
    torch.testing.assert_close(dst.text_prompt.ctx, src.text_prompt.ctx)


@torch.no_grad()
def test_state_dict_round_trip(images):
    images = images[:2]
    src = build(COCOOP)
    dst = build(COCOOP)  # the same random CLIP (seed 0), other prompts:
    for p in dst.text_prompt.parameters():
        p.add_(torch.randn_like(p))
    src.eval()
    dst.eval()
    assert not torch.allclose(src(images), dst(images))
    dst.load_state_dict(src.state_dict())
    dst.eval()
    torch.testing.assert_close(dst(images), src(images))


# --------------------------------------------------------- class-count errors
def _csc(num_classes, classnames):
    return build(dict(type='CoOp', n_ctx=2, class_specific=True,
                      num_classes=num_classes), classnames=classnames)


def test_checkpoint_with_other_class_count_names_both_shapes():
    ckpt = _csc(5, CLASSES5).state_dict()
    model = _csc(3, CLASSES3)
    with pytest.raises(CheckpointError) as exc:
        model.load_state_dict(ckpt)
    msg = str(exc.value)
    assert '\n' not in msg
    assert 'text_prompt.ctx' in msg
    assert '(5, 2, 64)' in msg and '(3, 2, 64)' in msg


def test_checkpoint_hook_checks_checkpoint_against_model_with_its_meta():
    """``PlainCheckpointHook.after_load_checkpoint`` runs before the runner
    loads the weights; it names both sides from ``meta['mmpl']``."""
    from types import SimpleNamespace

    from mmpl.engine import PlainCheckpointHook
    src = _csc(5, CLASSES5)
    checkpoint = dict(state_dict=src.state_dict(),
                      meta=dict(mmpl=src.checkpoint_meta()))
    runner = SimpleNamespace(model=_csc(3, CLASSES3), _resume=False)
    with pytest.raises(CheckpointError) as exc:
        PlainCheckpointHook().after_load_checkpoint(runner, checkpoint)
    msg = str(exc.value)
    assert '\n' not in msg and 'text_prompt.ctx' in msg
    assert '5 classes' in msg and '3 classes' in msg
    runner.model = _csc(5, CLASSES3[:2] + CLASSES5[2:])
    PlainCheckpointHook().after_load_checkpoint(runner, checkpoint)  # fits


def test_csc_evaluated_on_other_class_count(images):
    model = _csc(5, CLASSES5)
    model.eval()
    model.set_classes(CLASSES3)
    with pytest.raises(ValueError, match=r'learned for 5 classes.*has 3'):
        model(images)


# ----------------------------------------------------------------- CoCoOp
@pytest.mark.parametrize('chunk', [None, 4])
@torch.no_grad()
def test_cocoop_batched_equals_per_image_loop(images, chunk):
    images = images[:2]
    model = build(COCOOP, text_chunk_size=chunk)
    for p in model.text_prompt.meta_net.parameters():  # a visible shift
        torch.nn.init.normal_(p, std=0.5)
    model.eval()
    with text_plans(model) as plans:
        logits = model(images)
    b, c = images.shape[0], len(CLASSES5)
    # one pass: the [SOS] ctx prefix once per image, then the B*C class
    # sequences batched per length group (chunked when configured)
    eot = model._current_class_set().tokens.eot_index
    group_sizes = [b * int((eot == e).sum()) for e in set(eot.tolist())]
    assert len(plans) == 1 and plans[0].sequences == b * c
    assert plans[0].block_calls == 1 + sum(
        1 if chunk is None else -(-size // chunk) for size in group_sizes)
    clip, cocoop = model.clip, model.text_prompt
    tokens = build_class_tokens(clip, CLASSES5, 4)
    per_image, text_per_image = [], []
    for i in range(b):
        f0 = clip.model.encode_image(images[i:i + 1])
        prompts = cocoop(tokens, FrozenImageFeatures(f0))
        g = clip.encode_text(prompts.embeddings[0], prompts.eot_index)
        text_per_image.append(g)
        per_image.append(clip.logit_scale * F.normalize(f0, dim=-1) @
                         F.normalize(g, dim=-1).t())
    torch.testing.assert_close(logits, torch.cat(per_image), atol=1e-5,
                               rtol=0)
    # different images get different prompts, hence text features
    assert not torch.allclose(text_per_image[0], text_per_image[1],
                              atol=1e-4)
    # encode_prompts gives (B, C, D) in image-major order
    f0 = clip.encode_image(images)
    g = model.encode_prompts(cocoop(tokens, FrozenImageFeatures(f0)))
    assert g.shape == (b, c, clip.embed_dim)
    torch.testing.assert_close(g, torch.stack(text_per_image), atol=1e-5,
                               rtol=0)


@torch.no_grad()
def test_encode_prompts_with_per_image_deep_prompts():
    """(B, M, Dt) deep prompts follow their image through the B*C batch."""
    from mmpl.prompts import TextPrompts
    model = build(COCOOP, text_chunk_size=4)
    clip = model.clip
    tokens = build_class_tokens(clip, CLASSES3, 4)
    b, c, dt = 2, 3, clip.text_width
    emb = tokens.embeddings.unsqueeze(0).repeat(b, 1, 1, 1)  # (B, C, L, Dt)
    deep = [torch.randn(b, 4, dt)]
    g = model.encode_prompts(TextPrompts(embeddings=emb,
                                         eot_index=tokens.eot_index,
                                         deep_prompts=deep))
    assert g.shape == (b, c, clip.embed_dim)
    for i in range(b):
        ref = clip.encode_text(emb[i], tokens.eot_index, [deep[0][i]])
        torch.testing.assert_close(g[i], ref, atol=1e-5, rtol=0)
    assert not torch.allclose(g[0], g[1], atol=1e-4)
    # shared (M, Dt) deep prompts
    shared = model.encode_prompts(TextPrompts(
        embeddings=emb[:1], eot_index=tokens.eot_index,
        deep_prompts=[deep[0][1]]))
    torch.testing.assert_close(shared[0], g[1], atol=1e-5, rtol=0)
