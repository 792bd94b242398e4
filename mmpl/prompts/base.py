"""Interfaces shared by prompt modules.

A *text prompt module* turns a class set's frozen token data (and, when it is
image-conditioned, the frozen image features) into prompt embeddings for the
text encoder. The classifier owns the CLIP and the class set; prompt modules
own only their learnable parameters.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional

from mmengine.model import BaseModule
from torch import Tensor

from ..clip import ClassTokens


@dataclass
class FrozenImageFeatures:
    """Output of the frozen (prompt-free, no-grad) image pass.

    Attributes:
        global_feature: (B, D) pooled, projected image feature ``f0``.
        tokens: (B, 1+N, D) projected class+patch tokens ``Z0`` (or None
            when no module asked for them).
    """
    global_feature: Tensor
    tokens: Optional[Tensor] = None


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


class BaseTextPrompt(BaseModule):
    """Base class of text prompt modules.

    Subclasses set the class attributes below and implement ``forward``.
    Constructors receive ``clip`` (a :class:`~mmpl.clip.FrozenCLIP`) to read
    widths and initialisation embeddings; they must not keep a reference.

    ``forward(class_tokens, image=None, anchors=None)``: ``image`` is the
    frozen image pass (when ``image_conditioned`` or ``needs_image_tokens``),
    ``anchors`` the (C, D) frozen hand-crafted class text features (when
    ``needs_anchors``).

    Attributes:
        image_conditioned: prompts depend on the image (forward needs ``f0``).
        needs_image_tokens: forward also needs the frozen tokens ``Z0``.
        needs_anchors: forward needs the class anchors ``t0``.
        n_ctx: number of context slots after SOS in the class prompts.
        context_phrase: the initialisation phrase (``ctx_init``) or None; the
            class prompts are ``[SOS] <phrase> <name> . [EOT]`` with the
            phrase's first ``n_ctx`` tokens replaced by the context (its
            other tokens stay frozen), see
            :func:`~mmpl.clip.build_class_tokens`.
    """
    image_conditioned: bool = False
    needs_image_tokens: bool = False
    needs_anchors: bool = False
    n_ctx: int = 0
    context_phrase: Optional[str] = None

    def forward(self,
                class_tokens: ClassTokens,
                image: Optional[FrozenImageFeatures] = None,
                anchors: Optional[Tensor] = None) -> TextPrompts:
        raise NotImplementedError


@dataclass
class VisualPrompts:
    """Visual prompt tokens for the image encoder.

    Attributes:
        prompts: (Mv, Dv) shared or (B, Mv, Dv) per image.
        deep_prompts: per image layer 1 .. J-1, or None.
    """
    prompts: Tensor
    deep_prompts: Optional[List[Tensor]] = None


class BaseVisualPrompt(BaseModule):
    """Base class of visual prompt modules (stage 5 of the pipeline).

    ``forward(text_features, image, anchors=None)`` reads the text features
    ``g`` ((1|B, C, D), from the prompted text branch), the frozen image pass
    and, when ``needs_anchors``, the (C, D) class anchors ``t0``; it returns
    :class:`VisualPrompts`.

    Attributes:
        needs_frozen_image: forward needs ``f0``.
        needs_image_tokens: forward needs the frozen tokens ``Z0``.
        needs_anchors: forward needs the class anchors ``t0``.
    """
    needs_frozen_image: bool = True
    needs_image_tokens: bool = False
    needs_anchors: bool = False

    def forward(self,
                text_features: Tensor,
                image: Optional[FrozenImageFeatures],
                anchors: Optional[Tensor] = None) -> VisualPrompts:
        raise NotImplementedError


class BaseFeatureTuner(BaseModule):
    """Base class of image-feature tuning modules (stage 7).

    ``forward(image_features, text_features, image_tokens)`` maps the
    (B, D) image features, the (1|B, C, D) text features and the (B, 1+N, D)
    tokens of the (prompted) image pass to (B, D) or per-class (B, C, D)
    image features.

    Attributes:
        needs_image_tokens: forward needs the image tokens.
    """
    needs_image_tokens: bool = False

    def forward(self, image_features: Tensor, text_features: Tensor,
                image_tokens: Optional[Tensor]) -> Tensor:
        raise NotImplementedError
