"""Interfaces shared by prompt modules.

A *text prompt module* turns a class set's frozen token data (and, when it is
image-conditioned, the frozen image features) into prompt embeddings for the
text encoder. The classifier owns the CLIP and the class set; prompt modules
own only their learnable parameters.
"""
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor

from ..clip import ClassTokens
# The stage data live in mmpl.structures; re-exported here (public paths).
from ..structures import (FrozenImageFeatures, Needs,  # noqa: F401
                          TextPrompts, VisualPrompts)


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
    """
    image_conditioned: bool = False
    needs_image_tokens: bool = False
    needs_anchors: bool = False
    n_ctx: int = 0

    def forward(self,
                class_tokens: ClassTokens,
                image: Optional[FrozenImageFeatures] = None,
                anchors: Optional[Tensor] = None) -> TextPrompts:
        raise NotImplementedError


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
