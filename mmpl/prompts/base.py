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


def legacy_needs(module) -> Needs:
    """The needs of a module written against mmpl 0.1's interface: its
    attributes ``image_conditioned`` / ``needs_frozen_image``,
    ``needs_image_tokens`` and ``needs_anchors``."""
    return Needs(
        frozen_image=bool(getattr(module, 'image_conditioned', False)
                          or getattr(module, 'needs_frozen_image', False)),
        image_tokens=bool(getattr(module, 'needs_image_tokens', False)),
        anchors=bool(getattr(module, 'needs_anchors', False)))


def needs_of(module) -> Needs:
    """``module.needs`` (any pipeline module or extra loss), else its
    :func:`legacy_needs`."""
    needs = getattr(module, 'needs', None)
    return needs if isinstance(needs, Needs) else legacy_needs(module)


class _Declares:
    """``needs``: what the module's forward needs from the pipeline,
    computed from its constructor arguments. Subclasses override the
    property; the default reads mmpl 0.1's class attributes."""

    @property
    def needs(self) -> Needs:
        return legacy_needs(self)


class BaseTextPrompt(_Declares, BaseModule):
    """Base class of text prompt modules.

    Subclasses implement ``forward`` and, when they need more than the class
    tokens, the ``needs`` property (:class:`~mmpl.structures.Needs`):
    ``frozen_image`` means the prompts are image-conditioned ((B, C, L, Dt),
    forward reads ``f0``), ``image_tokens`` that forward also reads the
    frozen tokens ``Z0``, ``anchors`` the class anchors ``t0``.
    Constructors receive ``clip`` (a :class:`~mmpl.clip.FrozenCLIP`) to read
    widths and initialisation embeddings; they must not keep a reference.

    ``forward(class_tokens, image=None, anchors=None)``: ``image`` is the
    frozen image pass (when needed), ``anchors`` the (C, D) frozen
    hand-crafted class text features (when needed).

    Attributes:
        n_ctx: number of context slots after SOS in the class prompts.
        context_phrase: the initialisation phrase (``ctx_init``) or None; the
            class prompts are ``[SOS] <phrase> <name> . [EOT]`` with the
            phrase's first ``n_ctx`` tokens replaced by the context (its
            other tokens stay frozen), see
            :func:`~mmpl.clip.build_class_tokens`.
        produces_visual_prompts: forward also returns visual prompts
            (MaPLe-style coupling); a ``visual_prompt`` module cannot be
            added then.
    """
    n_ctx: int = 0
    context_phrase: Optional[str] = None
    produces_visual_prompts: bool = False

    def forward(self,
                class_tokens: ClassTokens,
                image: Optional[FrozenImageFeatures] = None,
                anchors: Optional[Tensor] = None) -> TextPrompts:
        raise NotImplementedError


class BaseVisualPrompt(_Declares, BaseModule):
    """Base class of visual prompt modules (stage 5 of the pipeline).

    ``forward(text_features, image, anchors=None)`` reads the text features
    ``g`` ((1|B, C, D), from the prompted text branch), the frozen image pass
    and, when ``needs.anchors``, the (C, D) class anchors ``t0``; it returns
    :class:`VisualPrompts`. ``needs`` defaults to the frozen image pass.
    """
    needs_frozen_image: bool = True  # the default ``needs``

    def forward(self,
                text_features: Tensor,
                image: Optional[FrozenImageFeatures],
                anchors: Optional[Tensor] = None) -> VisualPrompts:
        raise NotImplementedError


class BaseFeatureTuner(_Declares, BaseModule):
    """Base class of image-feature tuning modules (stage 7).

    ``forward(image_features, text_features, image_tokens)`` maps the
    (B, D) image features, the (1|B, C, D) text features and the (B, 1+N, D)
    tokens of the (prompted) image pass to (B, D) or per-class (B, C, D)
    image features. ``needs.image_tokens``: forward reads those tokens.
    """

    def forward(self, image_features: Tensor, text_features: Tensor,
                image_tokens: Optional[Tensor]) -> Tensor:
        raise NotImplementedError
