"""mmpl equals the authors' code: golden outputs of the official CoOp, CoCoOp,
KgCoOp, MaPLe, IVLP and PromptSRC implementations (``../shared/oracle``, see
its README).

Each case builds the method's real config with the fixtures' small CLIP
(OpenAI state-dict format, loaded by mmpl's adapter with no activation flag),
copies the official learnable tensors in through mmpl's converter mapping,
and compares logits, loss, gradients, features, EOT positions and the phrase
initialisation with the fixture README's tolerances.

The fixtures are read from ``../shared/oracle`` beside the checkout (or
``$MMPL_ORACLE_DIR``). Without them the tests skip with the reason, unless
``MMPL_REQUIRE_ORACLE=1`` (set by ``.ci/run``), where they fail.
"""
import os
import os.path as osp

import open_clip
import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from mmpl.models.official_checkpoints import official_to_mmpl
from helpers import ROOT, samples

ORACLE = os.environ.get('MMPL_ORACLE_DIR') or osp.join(
    osp.dirname(ROOT), 'shared', 'oracle')

if not osp.isfile(osp.join(ORACLE, 'inputs.pt')):
    if os.environ.get('MMPL_REQUIRE_ORACLE') == '1':
        raise RuntimeError(f'golden fixtures not found at {ORACLE} '
                           '(MMPL_REQUIRE_ORACLE=1)')
    pytest.skip(f'golden fixtures not found at {ORACLE} (the shared/ folder '
                'beside the checkout, or $MMPL_ORACLE_DIR)',
                allow_module_level=True)

ORACLE_ARCH = 'oracle-clip-small'
ORACLE_WEIGHTS = osp.join(ORACLE, 'clip_small_openai.pt')

# case -> (config, extra model options); MaPLe's fixture has depth 3
CASES = {
    'coop16': ('configs/coop/coop_vitb16_b2n_eurosat.py', {}),
    'coop4_init': ('configs/coop/coop_vitb16_b2n_eurosat.py',
                   dict(n_ctx=4, ctx_init='a photo of a')),
    'cocoop': ('configs/cocoop/cocoop_vitb16_b2n_eurosat.py', {}),
    'kgcoop': ('configs/coop/kgcoop_vitb16_b2n_eurosat.py', {}),
    'maple_nohalf': ('configs/maple/maple_vitb16_b2n_eurosat.py',
                     dict(depth=3)),
    'maple': ('configs/maple/maple_vitb16_b2n_eurosat.py', dict(depth=3)),
    # the PromptSRC repository's cases: the fixture's towers have 3 layers
    'ivlp_nohalf': ('configs/ivlp/ivlp_vitb16_b2n_eurosat.py', dict(depth=3)),
    'ivlp': ('configs/ivlp/ivlp_vitb16_b2n_eurosat.py', dict(depth=3)),
    'promptsrc_nohalf': ('configs/promptsrc/promptsrc_vitb16_b2n_eurosat.py',
                         dict(depth=3)),
    'promptsrc': ('configs/promptsrc/promptsrc_vitb16_b2n_eurosat.py',
                  dict(depth=3)),
}
# fixture README: bounds for a correct fp32 implementation; against the
# official fp16 prompt casts (case 'maple') about 2e-3
TOL = dict(logits=1e-4, loss=1e-4, grad=5e-5, features=1e-5)
TOL_FP16_CASTS = dict(logits=2e-3, loss=2e-3, grad=2e-3, features=2e-3)
FP16_CASES = ('maple', 'ivlp', 'promptsrc')
#: PromptSRC's loss terms: the fixture's loss_parts key -> mmpl's loss name
PROMPTSRC_TERMS = {'scl_text': 'loss_text_retention',
                   'scl_image': 'loss_image_retention',
                   'scl_logits': 'loss_logit_retention'}


def oracle_model_cfg(config: str, **text_prompt) -> dict:
    """The method's real config, with the fixtures' CLIP (no quick_gelu flag:
    the adapter detects OpenAI-format weights)."""
    open_clip.add_model_config(osp.join(ORACLE, 'oracle-clip-small.json'))
    cfg = Config.fromfile(osp.join(ROOT, config))
    model = cfg.model.to_dict()
    model['clip'] = dict(arch=ORACLE_ARCH, pretrained=ORACLE_WEIGHTS)
    model['text_prompt'].update(text_prompt)
    return model


@pytest.fixture(scope='module')
def inputs():
    return torch.load(osp.join(ORACLE, 'inputs.pt'), weights_only=True)


def load_case(name):
    return torch.load(osp.join(ORACLE, 'cases', f'{name}.pt'),
                      weights_only=True)


def build_case(name, inputs):
    config, options = CASES[name]
    case = load_case(name)
    model = MODELS.build(oracle_model_cfg(config, **options))
    model.set_classes(inputs['classnames'], inputs['template'])
    _, mapped, _ = official_to_mmpl(case['params'])
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    assert not unexpected
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(mapped), 'the mapping covers every tensor'
    return model, case


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.heavy
@pytest.mark.parametrize('name', list(CASES))
def test_equals_official_implementation(name, inputs):
    model, case = build_case(name, inputs)
    tol = TOL_FP16_CASTS if name in FP16_CASES else TOL
    images, labels = inputs['images'], inputs['labels']

    # layout: EOT positions and the prompt embeddings before the blocks
    tokens = model._current_class_set().tokens
    assert torch.equal(tokens.eot_index, case['eot_index'])
    length = tokens.token_ids.shape[1]
    assert torch.equal(tokens.token_ids,
                       case['tokenized_prompts'][:, :length])

    model.eval()
    with torch.no_grad():
        out = model.forward_features(images)
    assert (out.logits - case['logits']).abs().max() < tol['logits']
    assert rel(out.image_features, case['image_features']) < tol['features']
    text = out.text_features if case['text_features'].dim() == 3 else \
        out.text_features[0]
    assert rel(text, case['text_features']) < tol['features']

    model.train()
    losses = model.loss(images, samples(labels))
    assert abs(float(losses['loss_cls']) - case['loss_parts']['ce']) < \
        tol['loss']
    if 'kg' in case['loss_parts']:
        assert abs(float(losses['loss_text_retention']) -
                   case['loss_parts']['kg']) < tol['loss']
    for part, key in PROMPTSRC_TERMS.items():
        if part in case['loss_parts']:
            assert abs(float(losses[key]) - case['loss_parts'][part]) < \
                tol['loss'], part
    assert len(losses) == 1 + sum(k in case['loss_parts'] for k in (
        'kg', *PROMPTSRC_TERMS)), 'no loss term beyond the official ones'
    total = sum(losses.values())
    assert abs(float(total) - case['loss']) < tol['loss']
    total.backward()
    _, grads, _ = official_to_mmpl(case['grads'])
    params = dict(model.named_parameters())
    for key, g in grads.items():
        mine = params[key].grad
        assert mine is not None, key
        assert float((mine - g).abs().max()) <= tol['grad'] * float(
            g.abs().max()), key


@pytest.mark.parametrize('name', ['coop4_init', 'cocoop', 'kgcoop', 'maple'])
def test_phrase_initialisation_equals_official(name, inputs):
    config, options = CASES[name]
    case = load_case(name)
    model = MODELS.build(oracle_model_cfg(config, **options))
    _, init, _ = official_to_mmpl(
        {k: v for k, v in case['init'].items() if k.endswith('ctx')})
    assert torch.equal(model.text_prompt.ctx.data, init['text_prompt.ctx'])


def test_maple_keeps_the_frozen_phrase_words(inputs):
    """MaPLe with M=2 and 'a photo of a': [SOS] c1 c2 of a <name> . [EOT],
    the official prompt embeddings after the two context vectors."""
    model, case = build_case('maple_nohalf', inputs)
    tokens = model._current_class_set().tokens
    assert tokens.n_frozen_context == 2
    prompts = model.text_prompt(tokens).embeddings[0]  # (C, L, Dt)
    length = prompts.shape[1]
    official = case['prompt_embeddings'][:, :length]
    assert torch.allclose(prompts, official, atol=1e-6)


@pytest.mark.parametrize('name', ['promptsrc_nohalf', 'promptsrc'])
def test_promptsrc_teacher_features_equal_official(name, inputs):
    """The anchors of the retention terms: the frozen CLIP's features of the
    official 60 templates, averaged unnormalised, then normalised (the
    official ``fixed_embeddings``; CLIP's zero-shot rule differs by up to
    4e-3 here); and the frozen image features of the image term."""
    model, case = build_case(name, inputs)
    from mmpl.models.class_set import PROMPTSRC_IMAGENET_TEMPLATES
    assert list(PROMPTSRC_IMAGENET_TEMPLATES) == case['templates']
    anchors = model.class_anchors()
    assert rel(anchors, case['fixed_embeddings_normalised']) < TOL['features']
    with torch.no_grad():
        f0 = model.frozen_image_pass(inputs['images'],
                                     with_tokens=False).global_feature
    assert rel(torch.nn.functional.normalize(f0.float(), dim=-1),
               case['train_outputs']['zs_image_features_normalised']) < \
        TOL['features']


def test_promptsrc_gpa_weights_equal_official(inputs):
    """The Gaussian prompt aggregation weight of each epoch: the official
    trainer's ``self.gauss`` (N(15, 1) at epochs 1 .. 20, normalised), from
    the config's hook."""
    from mmpl.engine.hooks import gaussian_weight
    case = load_case('promptsrc_nohalf')
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs/promptsrc/promptsrc_vitb16_b2n_eurosat.py'))
    hook = next(h for h in cfg.custom_hooks
                if h['type'] == 'GaussianPromptAggregationHook')
    gpa = case['gpa']
    assert (cfg.train_cfg.max_epochs, hook['mean'], hook['std']) == (
        gpa['max_epoch'], gpa['mean'], gpa['std'])
    weights = torch.tensor([gaussian_weight(e, hook['mean'], hook['std'])
                            for e in gpa['epochs']], dtype=torch.float64)
    torch.testing.assert_close(weights / weights.sum(), gpa['weights'],
                               rtol=1e-9, atol=1e-300)
