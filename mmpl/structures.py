"""The data passed between the classifier's stages, and what each stage
needs: one neutral module that ``prompts``, ``losses`` and ``models`` import
(it imports nothing of mmpl).

Features are (B, D) / (1|B, C, D) tensors as documented per field; they
leave the CLIP towers in the CLIP's dtype and the classifier works in fp32
from the text features on (stage 4).
"""
from dataclasses import dataclass, fields
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Needs:
    """What a module needs from the pipeline (the classifier merges the
    declarations of its modules once, at build time).

    Attributes:
        frozen_image: the frozen image pass ``f0`` (B, D) (for a text
            prompt: the prompts are image-conditioned, (B, C, L, Dt)).
        image_tokens: image tokens (B, 1+N, D): for text and visual prompts
            ``Z0`` of the frozen pass; for a feature tuner the tokens of the
            image pass whose features it tunes.
        anchors: the (C, D) class anchors ``t0``.
        value_tokens: the value-path dense readout (B, 1+N, D) of the same
            pass (MaskCLIP-style, see
            :meth:`~mmpl.clip.towers.VisionTower.encode_dense`): for text
            and visual prompts ``FrozenImageFeatures.values``; a feature
            tuner receives it as its ``image_tokens``.
    """
    frozen_image: bool = False
    image_tokens: bool = False
    anchors: bool = False
    value_tokens: bool = False

    def __or__(self, other: 'Needs') -> 'Needs':
        return Needs(**{f.name: getattr(self, f.name) or getattr(other, f.name)
                        for f in fields(self)})


@dataclass
class FrozenImageFeatures:
    """Output of the frozen (prompt-free, no-grad) image pass.

    Attributes:
        global_feature: (B, D) pooled, projected image feature ``f0``.
        tokens: (B, 1+N, D) projected class+patch tokens ``Z0`` (or None
            when no module asked for them).
        values: (B, 1+N, D) value-path tokens of the last block (the dense
            readout that localises, :meth:`~mmpl.clip.FrozenCLIP.
            encode_image_dense`), or None when no module asked for them.
    """
    global_feature: Tensor
    tokens: Optional[Tensor] = None
    values: Optional[Tensor] = None

    def dense(self, readout: str) -> Optional[Tensor]:
        """The (B, 1+N, D) dense features of ``readout``: 'tokens' (final
        outputs) or 'values' (value path)."""
        return self.values if readout == 'values' else self.tokens


@dataclass
class TextPrompts:
    """What a text prompt module hands to the text encoder.

    Attributes:
        embeddings: (1, C, L, Dt) shared by all images, or (B, C, L, Dt)
            image-conditioned.
        eot_index: (C,) EOT position of each class prompt.
        deep_prompts: per text layer 1 .. J-1, (M, Dt) shared prompts.
        visual_prompts: (Mv, Dv) | (B, Mv, Dv) visual prompts produced on the
            text side (MaPLe-style coupling), or None.
        deep_visual_prompts: per image layer 1 .. J-1, or None.
        features: (1|B, C, D) text features given directly (a module with
            nothing to encode, e.g. zero-shot CLIP); ``embeddings`` and
            ``eot_index`` are then None.
        losses: the module's own weighted regularisers (name -> scalar),
            added to the training losses by the classifier, or None.
        shared_prefix: P > 0 when positions 0 .. P-1 of ``embeddings`` are
            the same for every class of an image (and deep prompts stay
            inside them); the text encoder then runs them once per image.
            Only set it where this holds by construction
            (:func:`~mmpl.prompts.context.shared_prefix_length`).
    """
    embeddings: Optional[Tensor]
    eot_index: Optional[Tensor]
    deep_prompts: Optional[List[Tensor]] = None
    visual_prompts: Optional[Tensor] = None
    deep_visual_prompts: Optional[List[Tensor]] = None
    features: Optional[Tensor] = None
    losses: Optional[Dict[str, Tensor]] = None
    shared_prefix: int = 0

    @property
    def image_conditioned(self) -> bool:
        source = self.features if self.features is not None else \
            self.embeddings
        return source.shape[0] > 1


@dataclass
class VisualPrompts:
    """Visual prompt tokens for the image encoder.

    Attributes:
        prompts: (Mv, Dv) shared or (B, Mv, Dv) per image.
        deep_prompts: per image layer 1 .. J-1, or None.
    """
    prompts: Tensor
    deep_prompts: Optional[List[Tensor]] = None


@dataclass
class JointFeatures:
    """What a text prompt module that runs both towers itself returns
    (``encodes_jointly``: DGPrompt's interleaved towers, whose prompts of
    each layer come from the other tower's states of that layer).

    Attributes:
        image_features: (B, D), not normalised.
        text_features: (B, C, D), not normalised.
        image_tokens: (B, 1+N, D) projected tokens of the prompted image
            pass, when asked for (a feature tuner reads them).
        text_prompts: the generated text prompts of layers 0 .. J-1,
            (M, Dt) | (B, M, Dt) each (for inspection).
        visual_prompts: the generated visual prompts of layers 0 .. J-1,
            (Mv, Dv) | (B, Mv, Dv) each.
        losses: the module's own weighted regularisers, or None.
    """
    image_features: Tensor
    text_features: Tensor
    image_tokens: Optional[Tensor] = None
    text_prompts: Optional[List[Tensor]] = None
    visual_prompts: Optional[List[Tensor]] = None
    losses: Optional[Dict[str, Tensor]] = None


@dataclass
class PromptCLIPOutputs:
    """Everything one forward computed; extra losses read from it.

    Attributes:
        logits: (B, C) scaled cosine logits.
        image_features: (B, D) or per-class (B, C, D), not normalised.
        text_features: (1|B, C, D), not normalised.
        logit_scale: scalar exp(logit_scale).
        frozen_image: the frozen image pass, when one ran.
        anchors: (C, D) frozen hand-crafted text features, when requested.
        prompt_losses: the text prompt module's own regularisers
            (``TextPrompts.losses``), added to the training losses.
    """
    logits: Tensor
    image_features: Tensor
    text_features: Tensor
    logit_scale: Tensor
    frozen_image: Optional[FrozenImageFeatures] = None
    anchors: Optional[Tensor] = None
    prompt_losses: Optional[Dict[str, Tensor]] = None


def full_precision(tensor: Tensor):
    """A context in which autocast is off on ``tensor``'s device: scaled
    cosines computed inside stay fp32 under AMP. In bf16 a cosine keeps
    about 3 significant digits, so at CLIP's logit scale of 100 a logit
    would be off by up to ~0.2, enough to reorder close classes."""
    return torch.autocast(tensor.device.type, enabled=False)


def cosine_logits(image_features: Tensor, text_features: Tensor,
                  scale: Tensor) -> Tensor:
    """Scaled cosine similarity, in fp32 (also under autocast:
    :func:`full_precision`).

    Args:
        image_features: (B, D) or per-class (B, C, D).
        text_features: (1|B, C, D).
        scale: scalar.

    Returns:
        (B, C) fp32 logits.
    """
    with full_precision(image_features):
        f = F.normalize(image_features.float(), dim=-1)
        g = F.normalize(text_features.float(), dim=-1)
        scale = scale.float() if torch.is_tensor(scale) else scale
        if f.dim() == 3:
            return scale * (f * g).sum(-1)
        if g.shape[0] == 1:
            return scale * f @ g[0].t()
        return scale * torch.einsum('bd,bcd->bc', f, g)
