"""PromptCLIPClassifier: frozen CLIP + prompt modules + losses, as an
mmpretrain classifier.

One forward runs the stages of DESIGN.md in order:

1. frozen image pass (no grad; only when a module needs ``f0``/``Z0``)
2. class anchors ``t0`` (C, D), cached per class set (only when needed)
3. text prompt module -> (1|B, C, L, Dt) prompt embeddings (+ deep prompts)
4. text encoder -> ``g`` (1|B, C, D): all B*C sequences in one batched,
   chunked call, cut after EOT
5. visual prompt module (optional) -> visual prompt tokens
6. image encoder with prompts -> ``f`` (B, D); the frozen pass is reused when
   there are no visual prompts
7. feature tuner (optional) -> (B, D) or per-class (B, C, D)
8. logits = exp(logit_scale) * cos(f, g); losses = CE + extra losses

A text prompt module with ``encodes_jointly`` (DGPrompt with guidance) runs
stages 3-6 itself, the two towers interleaved block by block
(``encode_jointly`` -> :class:`~mmpl.structures.JointFeatures`).

What runs in stages 1-2 follows the modules' merged ``needs``
(:class:`~mmpl.structures.Needs`), decided when the model is built.
Features leave the CLIP in its dtype; the classifier works in fp32 from the
frozen features and the text features on.

Class names come from the dataset (``metainfo['classes']``) through
:meth:`set_classes`, called by mmpl's loops and ``ClassNamesHook``.
Only prompt parameters are trainable; the CLIP is held outside the module
tree (see :mod:`mmpl.clip.adapter`), so checkpoints carry only the prompts
plus the meta needed to rebuild (architecture, weights, class names).
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.classifiers import BaseClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from ..clip import CLIP_MEAN, CLIP_STD, DEFAULT_TEMPLATE, FrozenCLIP
from ..losses.base import BaseExtraLoss
from ..prompts.base import BaseFeatureTuner, BaseTextPrompt, BaseVisualPrompt
# PromptCLIPOutputs / cosine_logits are re-exported (public import paths).
from ..structures import (FrozenImageFeatures, Needs,  # noqa: F401
                          PromptCLIPOutputs, TextPrompts, cosine_logits)
from ..utils.checks import check_choice
from ..utils.errors import CheckpointError, ConfigError
from ..version import __version__
from .class_set import ANCHOR_AVERAGES, ClassSet, resolve_templates

#: class sets (and their cached text features) kept: train, base, new, + one
_CACHE_SIZE = 4


def _remember(cache: dict, key, value):
    """``cache[key] = value``, dropping the oldest entries beyond
    ``_CACHE_SIZE``; returns ``value``."""
    cache[key] = value
    while len(cache) > _CACHE_SIZE:
        cache.pop(next(iter(cache)))
    return value


def _plain_cfg(cfg):
    """``cfg`` (dicts, lists, tuples, scalars) as plain Python data that
    ``torch.load(weights_only=True)`` reads; None when it holds anything
    else (e.g. a module instead of a config)."""
    def plain(node):
        if isinstance(node, dict):
            return {str(k): plain(v) for k, v in node.items()}
        if isinstance(node, tuple):
            return tuple(plain(v) for v in node)
        if isinstance(node, list):
            return [plain(v) for v in node]
        if node is None or isinstance(node, (str, bool, int, float)):
            return node
        raise TypeError(type(node).__name__)
    try:
        return plain(cfg)
    except TypeError:
        return None


@MODELS.register_module()
class PromptCLIPClassifier(BaseClassifier):
    """CLIP prompt-learning classifier.

    Args:
        clip: kwargs of :class:`~mmpl.clip.FrozenCLIP` (``arch``,
            ``pretrained``, ``quick_gelu``, ``grad_checkpointing``).
        text_prompt: config of a text prompt module (``CoOp``, ``CoCoOp``..).
        visual_prompt: optional config of a visual prompt module.
        feature_tuner: optional config of a feature tuning module.
        loss: classification loss [CrossEntropyLoss].
        extra_losses: losses (:class:`~mmpl.losses.BaseExtraLoss`) called
            as ``loss(outputs, labels)`` with a :class:`PromptCLIPOutputs`
            (retention, alignment ...).
        template: hand-crafted prompt template for the anchors; None uses the
            dataset's (``metainfo['template']``), else 'a photo of a {}.'.
        anchor_templates: anchors from an ensemble of templates instead
            (PromptSRC): 'openai_imagenet' (open_clip's 80 OpenAI ImageNet
            templates), 'simple_imagenet', 'promptsrc_imagenet' (the 60 of
            the official PromptSRC code), or a list of '... {} ...'
            strings; None = the one ``template`` [default].
        anchor_average: how an ensemble's features of a class are averaged:
            'normalised' (CLIP's zero-shot rule) [default] or
            'unnormalised' (the official PromptSRC code: the normalised mean
            of the raw features).
        classnames: optional initial class names (normally set from data).
        text_chunk_size: max sequences per text-encoder call (memory bound
            for B*C image-conditioned prompts); None = one call.
        cache_eval_text: keep the text features of prompts that do not
            depend on the image for a whole evaluation (one text pass per
            class set) [True]. Turn it off when the prompts change during
            an evaluation (e.g. tuned at test time): each batch then
            encodes them again.
        data_preprocessor: defaults to CLIP's normalisation, BGR->RGB; a
            dict without ``type`` (mmpretrain's dataset bases) is merged
            onto it (:func:`clip_data_preprocessor`).
    """

    def __init__(self,
                 clip: dict,
                 text_prompt: dict,
                 visual_prompt: Optional[dict] = None,
                 feature_tuner: Optional[dict] = None,
                 loss: dict = dict(type='mmpretrain.CrossEntropyLoss',
                                   loss_weight=1.0),
                 extra_losses: Sequence[dict] = (),
                 template: Optional[str] = None,
                 anchor_templates=None,
                 anchor_average: str = 'normalised',
                 classnames: Optional[Sequence[str]] = None,
                 text_chunk_size: Optional[int] = None,
                 cache_eval_text: bool = True,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        data_preprocessor = clip_data_preprocessor(data_preprocessor)
        super().__init__(init_cfg=init_cfg,
                         data_preprocessor=data_preprocessor)
        # the constructor arguments as plain data: checkpoint_meta()['model']
        # rebuilds the model from a checkpoint alone (mmpl.apis)
        self._model_cfg = _plain_cfg(dict(
            type=type(self).__name__, clip=clip, text_prompt=text_prompt,
            visual_prompt=visual_prompt, feature_tuner=feature_tuner,
            loss=loss, extra_losses=list(extra_losses), template=template,
            anchor_templates=anchor_templates, anchor_average=anchor_average,
            text_chunk_size=text_chunk_size, cache_eval_text=cache_eval_text,
            data_preprocessor=data_preprocessor))
        self.clip = FrozenCLIP(**clip)
        self.text_prompt: BaseTextPrompt = self._build_part(
            text_prompt, BaseTextPrompt, 'text_prompt')
        self.visual_prompt: Optional[BaseVisualPrompt] = self._build_part(
            visual_prompt, BaseVisualPrompt, 'visual_prompt')
        self.feature_tuner: Optional[BaseFeatureTuner] = self._build_part(
            feature_tuner, BaseFeatureTuner, 'feature_tuner')
        self.loss_module = MODELS.build(loss)
        self.extra_losses = nn.ModuleList([
            self._build_part(cfg, BaseExtraLoss, f'extra_losses[{i}]',
                             with_clip=False)
            for i, cfg in enumerate(extra_losses)])
        self.template = template
        #: (T,) template callables of the anchor ensemble, or None
        self._anchor_ensemble = (None if anchor_templates is None else
                                 resolve_templates(anchor_templates))
        check_choice('anchor_average', anchor_average, ANCHOR_AVERAGES)
        self.anchor_average = anchor_average
        self.text_chunk_size = text_chunk_size
        self.cache_eval_text = cache_eval_text
        self._check_combination()
        self._merge_needs()

        self._classnames: Optional[Tuple[str, ...]] = None
        self._dataset_template: Optional[str] = None
        self._class_sets: 'OrderedDict[tuple, ClassSet]' = OrderedDict()
        # class key -> (text features, prompts), valid during one evaluation
        self._eval_text_cache: Dict[tuple, Tuple[Tensor, TextPrompts]] = {}
        if classnames is not None:
            self.set_classes(classnames)

    # ------------------------------------------------------------------ build
    def _build_part(self, cfg: Optional[dict], base: type, name: str,
                    with_clip: bool = True) -> Optional[nn.Module]:
        """The module of ``cfg`` (a config or a module), checked to be a
        ``base`` that declares its ``needs``; prompt modules receive the
        frozen CLIP (``with_clip``)."""
        if cfg is None:
            return None
        if isinstance(cfg, nn.Module):
            module = cfg
        else:
            module = MODELS.build(cfg, default_args=dict(
                clip=self.clip) if with_clip else None)
        if not isinstance(module, base):
            raise ConfigError(f'{name}={type(module).__name__} is not a '
                              f'{base.__name__}')
        if not isinstance(module.needs, Needs):
            raise ConfigError(
                f'{name}={type(module).__name__} declares needs='
                f'{module.needs!r}; it must be a mmpl.structures.Needs, '
                'e.g. needs = Needs(anchors=True)')
        return module

    def _check_combination(self) -> None:
        """Fail at build time for module combinations that cannot work."""
        needs_tokens = [
            type(m).__name__
            for m in (self.text_prompt, self.visual_prompt, self.feature_tuner)
            if m is not None and (m.needs.image_tokens
                                  or m.needs.value_tokens)
        ]
        if needs_tokens and not self.clip.is_vit:
            raise ConfigError(
                f'{", ".join(needs_tokens)} need image tokens, but '
                f'{self.clip.arch} has no ViT image tower; use a ViT arch.')
        if self.visual_prompt is not None and not self.clip.is_vit:
            raise ConfigError(f'{type(self.visual_prompt).__name__} needs a '
                              f'ViT image tower; {self.clip.arch} has none.')
        if (self.visual_prompt is not None
                and self.text_prompt.produces_visual_prompts):
            raise ConfigError(
                f'{type(self.text_prompt).__name__} already produces '
                f'visual prompts; drop visual_prompt='
                f'{type(self.visual_prompt).__name__}')
        if (self.feature_tuner is not None
                and self.feature_tuner.needs.value_tokens
                and self.text_prompt.encodes_jointly):
            raise ConfigError(
                f'{type(self.feature_tuner).__name__}(dense=\'values\') '
                f'needs the value-path readout, which '
                f'{type(self.text_prompt).__name__} does not produce (it '
                "runs the image tower itself); use dense='tokens'.")

    def _merge_needs(self) -> None:
        """What the pipeline computes, from the modules' ``needs`` (once)."""
        # tokens of the frozen pass need the frozen pass
        text, visual = (
            n | Needs(frozen_image=n.image_tokens or n.value_tokens)
            for n in (
                self.text_prompt.needs,
                self.visual_prompt.needs if self.visual_prompt is not None
                else Needs()))
        #: image-conditioned text prompts ((B, C, L, Dt); never cached)
        self._per_image_text = text.frozen_image
        tuner = (self.feature_tuner.needs if self.feature_tuner
                 is not None else Needs())
        #: whether the image pass carries visual prompts
        self._prompted_image = (self.visual_prompt is not None or
                                self.text_prompt.produces_visual_prompts)
        #: the tuner reads the tokens of the image pass
        self._tuner_tokens = tuner.image_tokens or tuner.value_tokens
        #: ... as the value-path readout
        self._tuner_values = tuner.value_tokens
        # Without visual prompts the frozen pass is the image pass, so a
        # tuner's tokens come from it.
        frozen_for_tuner = Needs(
            frozen_image=True, image_tokens=not tuner.value_tokens,
            value_tokens=tuner.value_tokens) if (
            self._tuner_tokens and not self._prompted_image) else Needs()
        #: stages 1-2 of the prompt modules (always)
        self._needs = text | visual | frozen_for_tuner
        #: what the extra losses add (they run in training only)
        self._loss_needs = Needs()
        for module in self.extra_losses:
            self._loss_needs = self._loss_needs | module.needs

    @property
    def needs(self) -> Needs:
        """What the next forward computes before the prompt modules run:
        the frozen image pass (with tokens), the class anchors."""
        if self.training:
            return self._needs | self._loss_needs
        # anchors of the losses stay requested in evaluation (as before:
        # cached once per class set)
        return self._needs | Needs(anchors=self._loss_needs.anchors)

    @property
    def method_name(self) -> str:
        """The prompt modules, e.g. ``CTP+TFT`` or ``FTP+TVP``."""
        return '+'.join(type(m).__name__ for m in (
            self.text_prompt, self.visual_prompt, self.feature_tuner)
                        if m is not None)

    # ------------------------------------------------------------- class sets
    @property
    def classnames(self) -> Optional[Tuple[str, ...]]:
        return self._classnames

    def set_classes(self, classnames: Sequence[str],
                    template: Optional[str] = None) -> None:
        """Switch the class set (e.g. base -> new at evaluation).

        Args:
            classnames: readable class names, index = label.
            template: the dataset's hand-crafted template, used for anchors
                unless the model was configured with its own ``template``.
        """
        if not classnames:
            raise ConfigError('set_classes needs at least one class name')
        self._classnames = tuple(classnames)
        self._dataset_template = template

    @property
    def dataset_template(self) -> Optional[str]:
        """The template given with the class names (:meth:`set_classes`)."""
        return self._dataset_template

    @property
    def anchor_template(self) -> str:
        return self.template or self._dataset_template or DEFAULT_TEMPLATE

    def _class_key(self) -> tuple:
        return (self._classnames, self.anchor_template, self.clip.device)

    def _current_class_set(self) -> ClassSet:
        if self._classnames is None:
            raise ConfigError(
                'PromptCLIPClassifier has no class names: they are set from '
                "the dataset's metainfo['classes'] by ClassNamesHook (train) "
                'and MultiSplitValLoop/TestLoop (eval); add them to the '
                'config or call model.set_classes(names).')
        key = self._class_key()
        class_set = self._class_sets.get(key)
        if class_set is None:
            class_set = _remember(self._class_sets, key, ClassSet.build(
                self.clip, self._classnames, self.text_prompt.n_ctx,
                self.text_prompt.context_phrase, self.anchor_template,
                self._anchor_ensemble))
        return class_set

    def class_anchors(self) -> Tensor:
        """(C, D) frozen text features of the hand-crafted template (or the
        unit mean over ``anchor_templates``), computed once per class set."""
        return self._current_class_set().encode_anchors(
            self.clip, self.anchor_average, self.text_chunk_size)

    # ---------------------------------------------------------------- forward
    def clear_text_cache(self) -> None:
        """Forget the evaluation's cached text features (they are only valid
        while the prompts do not change)."""
        self._eval_text_cache.clear()

    def train(self, mode: bool = True):
        self.clear_text_cache()
        return super().train(mode)

    def frozen_image_pass(self, images: Tensor, with_tokens: bool,
                          with_values: bool = False) -> FrozenImageFeatures:
        """Stage 1: prompt-free image features, no grad (``with_values``:
        also the value-path dense readout)."""
        if with_values:
            with torch.no_grad():
                f, z, v = self.clip.encode_image_dense(images)
            return FrozenImageFeatures(
                f.float(), z.float() if with_tokens else None, v.float())
        with torch.no_grad():
            out = self.clip.encode_image(images, return_tokens=with_tokens)
        if with_tokens:
            return FrozenImageFeatures(out[0].float(), out[1].float())
        return FrozenImageFeatures(out.float())

    def encode_prompts(self, prompts: TextPrompts) -> Tensor:
        """Stage 4: (1|B, C, L, Dt) prompts -> (1|B, C, D) text features,
        all B*C sequences batched (by length group, chunked), a shared
        ``[SOS] ctx`` prefix run once per image."""
        if prompts.features is not None:
            return prompts.features.float()
        return self.clip.encode_class_prompts(
            prompts.embeddings, prompts.eot_index, prompts.shared_prefix,
            prompts.deep_prompts, chunk_size=self.text_chunk_size).float()

    def _text_features(self, class_set: ClassSet,
                       frozen: Optional[FrozenImageFeatures],
                       anchors: Optional[Tensor]
                       ) -> Tuple[Tensor, TextPrompts]:
        """Stages 3-4, with the text features of image-independent prompts
        cached for the whole evaluation (per class set)."""
        cacheable = (self.cache_eval_text and not self.training
                     and not torch.is_grad_enabled()
                     and not self._per_image_text)
        key = self._class_key()
        if cacheable and key in self._eval_text_cache:
            return self._eval_text_cache[key]
        prompts = self.text_prompt(class_set.tokens, frozen, anchors)
        g = self.encode_prompts(prompts)
        if cacheable:
            _remember(self._eval_text_cache, key, (g, prompts))
        return g, prompts

    def _staged_features(self, images: Tensor, class_set: ClassSet,
                         frozen: Optional[FrozenImageFeatures],
                         anchors: Optional[Tensor]) -> tuple:
        """Stages 3-6: text prompts and features, visual prompts, the image
        pass. Returns f (B, D), g (1|B, C, D), the image tokens (or None),
        the prompt module's losses and the frozen pass (run here when
        there are no visual prompts)."""
        g, prompts = self._text_features(class_set, frozen, anchors)

        visual_prompts = prompts.visual_prompts
        deep_visual = prompts.deep_visual_prompts
        if self.visual_prompt is not None:
            if visual_prompts is not None:  # a module that did not declare
                raise RuntimeError(
                    f'{type(self.text_prompt).__name__} returned visual '
                    'prompts without declaring produces_visual_prompts')
            vp = self.visual_prompt(g, frozen, anchors)
            visual_prompts, deep_visual = vp.prompts, vp.deep_prompts

        if visual_prompts is None:
            if frozen is None:
                frozen = self.frozen_image_pass(images, with_tokens=False)
            f, tokens = frozen.global_feature, frozen.dense(
                'values' if self._tuner_values else 'tokens')
        elif self._tuner_values:
            out = self.clip.encode_image_dense(images, visual_prompts,
                                               deep_visual)
            f, tokens = out[0].float(), out[2]
        else:
            out = self.clip.encode_image(images, visual_prompts, deep_visual,
                                         return_tokens=self._tuner_tokens)
            f, tokens = (out[0], out[1]) if self._tuner_tokens else (out,
                                                                     None)
            f = f.float()
        return f, g, tokens, prompts.losses, frozen

    def forward_features(self, images: Tensor) -> PromptCLIPOutputs:
        """Run the staged pipeline on normalised images (B, 3, H, W)."""
        class_set = self._current_class_set()
        needs = self.needs
        frozen = None
        if needs.frozen_image:
            frozen = self.frozen_image_pass(images,
                                            with_tokens=needs.image_tokens,
                                            with_values=needs.value_tokens)
        anchors = self.class_anchors() if needs.anchors else None

        if self.text_prompt.encodes_jointly:
            # stages 3-6 in one: the module interleaves the two towers
            joint = self.text_prompt.encode_jointly(
                self.clip, class_set.tokens, images, frozen, anchors,
                chunk_size=self.text_chunk_size,
                return_tokens=self._tuner_tokens)
            f, g = joint.image_features.float(), joint.text_features.float()
            tokens, prompt_losses = joint.image_tokens, joint.losses
        else:
            f, g, tokens, prompt_losses, frozen = self._staged_features(
                images, class_set, frozen, anchors)

        if self.feature_tuner is not None:
            f = self.feature_tuner(f, g, tokens)

        scale = self.clip.logit_scale.float()
        logits = cosine_logits(f, g, scale)
        return PromptCLIPOutputs(logits=logits, image_features=f,
                                 text_features=g, logit_scale=scale,
                                 frozen_image=frozen, anchors=anchors,
                                 prompt_losses=prompt_losses)

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """The image features of normalised images (B, 3, H, W), as
        mmpretrain's ``BaseClassifier.extract_feat`` promises: (B, D), not
        normalised (per-class (B, C, D) after a per-class feature tuner);
        ``forward(mode='tensor')`` returns the logits."""
        return self.forward_features(inputs).image_features

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        if mode == 'tensor':
            return self.forward_features(inputs).logits
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def loss(self, inputs: Tensor,
             data_samples: List[DataSample]) -> Dict[str, Tensor]:
        outputs = self.forward_features(inputs)
        labels = torch.cat([ds.gt_label for ds in data_samples]).to(
            outputs.logits.device)
        losses = {'loss_cls': self.loss_module(outputs.logits, labels)}
        losses.update(outputs.prompt_losses or {})
        for module in self.extra_losses:
            losses[module.loss_name] = module(outputs, labels)
        return losses

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        logits = self.forward_features(inputs).logits
        scores = F.softmax(logits, dim=1)
        labels = scores.argmax(dim=1, keepdim=True)
        if data_samples is None:
            data_samples = [DataSample() for _ in range(scores.shape[0])]
        for ds, score, label in zip(data_samples, scores, labels):
            ds.set_pred_score(score).set_pred_label(label)
        return data_samples

    # ------------------------------------------------------------ checkpoints
    def checkpoint_meta(self) -> dict:
        """Meta needed to rebuild the model (plain types: weights_only)."""
        return dict(
            arch=self.clip.arch,
            pretrained=self.clip.pretrained,
            text_prompt=type(self.text_prompt).__name__,
            classes=list(self._classnames or ()),
            mmpl_version=__version__,
            # added for mmpl.apis (absent from older checkpoints): the
            # constructor arguments (None when a part was given as a module)
            # and the dataset template the class names were set with
            model=self._model_cfg,
            template=self._dataset_template)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        # Checkpoints of mmpl <= 0.1 carried the meta as ``_extra_state``
        # too; it lives in ``checkpoint['meta']['mmpl']`` only now.
        state_dict.pop(prefix + '_extra_state', None)
        mismatch = shape_mismatch(self, state_dict, prefix)
        if mismatch:
            key, theirs, mine = mismatch
            raise CheckpointError(
                f'checkpoint does not fit this model: {key} has shape '
                f'{theirs} in the checkpoint and {mine} here')
        self._eval_text_cache.clear()  # the prompts are about to change
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)


def clip_data_preprocessor(cfg: Optional[dict] = None) -> dict:
    """The classifier's data preprocessor: CLIP's normalisation (BGR->RGB)
    when ``cfg`` is None; a ``cfg`` without ``type`` (as mmpretrain's
    dataset bases write it: ``num_classes``, ImageNet's ``mean``/``std``)
    is merged onto it, its keys winning; a typed ``cfg`` is used as is."""
    default = dict(type='mmpretrain.ClsDataPreprocessor', mean=CLIP_MEAN,
                   std=CLIP_STD, to_rgb=True)
    if cfg is None:
        return default
    if isinstance(cfg, dict) and 'type' not in cfg:
        return dict(default, **cfg)
    return cfg


def shape_mismatch(model: nn.Module, state_dict: dict,
                   prefix: str = '') -> Optional[Tuple[str, tuple, tuple]]:
    """``(key, shape in state_dict, shape in model)`` of the first
    parameter of ``model`` whose shape in ``state_dict`` (keys under
    ``prefix``) differs; None when every present one fits."""
    for key, param in model.named_parameters(prefix=prefix.rstrip('.')):
        if key in state_dict and state_dict[key].shape != param.shape:
            return key, tuple(state_dict[key].shape), tuple(param.shape)
    return None
