"""Interfaces shared by prompt modules.

A *text prompt module* turns a class set's frozen token data (and, when it is
image-conditioned, the frozen image features) into prompt embeddings for the
text encoder. The classifier owns the CLIP and the class set; prompt modules
own only their learnable parameters.

Every module declares ``needs`` (a :class:`~mmpl.structures.Needs`: what its
forward reads besides its own inputs): a class attribute, or a property
computed from the constructor arguments. It is abstract in the three base
classes, so a module that does not declare it cannot be built.
"""
from abc import abstractmethod
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor

from ..clip import ClassTokens
# The stage data live in mmpl.structures; re-exported here (public paths).
from ..structures import (FrozenImageFeatures, JointFeatures,  # noqa: F401
                          Needs, TextPrompts, VisualPrompts)


class BaseTextPrompt(BaseModule):
    """Base class of text prompt modules (stage 3 of the pipeline).

    ``forward(class_tokens, image=None, anchors=None)`` returns
    :class:`TextPrompts`: ``class_tokens`` is the class set's frozen token
    data (:class:`~mmpl.clip.ClassTokens`), ``image`` the frozen image pass
    and ``anchors`` the (C, D) frozen hand-crafted class text features, each
    given when ``needs`` asks for it (None otherwise).

    Constructors receive ``clip`` (a :class:`~mmpl.clip.FrozenCLIP`) to read
    widths and initialisation embeddings; they must not keep a reference.

    Attributes:
        needs: what forward reads (abstract: every module declares it).
            ``frozen_image``: the prompts are image-conditioned
            ((B, C, L, Dt), forward reads ``image.global_feature``, ``f0``);
            ``image_tokens`` / ``value_tokens``: forward also reads the
            frozen tokens ``Z0`` / the value-path readout; ``anchors``: the
            class anchors ``t0``.
        n_ctx: number of context slots after SOS in the class prompts (0: the
            module writes no context, e.g. zero-shot CLIP).
        context_phrase: the initialisation phrase (``ctx_init``) or None; the
            class prompts are ``[SOS] <phrase> <name> . [EOT]`` with the
            phrase's first ``n_ctx`` tokens replaced by the context (its
            other tokens stay frozen), see
            :func:`~mmpl.clip.build_class_tokens`.
        produces_visual_prompts: forward also returns visual prompts
            (MaPLe-style coupling); a ``visual_prompt`` module cannot be
            added then.
        encodes_jointly: the module runs stages 3-6 itself, the two towers
            interleaved (:meth:`encode_jointly`), instead of ``forward`` and
            the classifier's two encoders (DGPrompt with guidance).
    """
    n_ctx: int = 0
    context_phrase: Optional[str] = None
    produces_visual_prompts: bool = False
    encodes_jointly: bool = False

    @property
    @abstractmethod
    def needs(self) -> Needs:
        """What forward reads from the pipeline (see the class docs)."""

    def forward(self,
                class_tokens: ClassTokens,
                image: Optional[FrozenImageFeatures] = None,
                anchors: Optional[Tensor] = None) -> TextPrompts:
        raise NotImplementedError

    def encode_jointly(self,
                       clip,
                       class_tokens: ClassTokens,
                       images: Tensor,
                       image: Optional[FrozenImageFeatures] = None,
                       anchors: Optional[Tensor] = None,
                       chunk_size: Optional[int] = None,
                       return_tokens: bool = False) -> JointFeatures:
        """Stages 3-6 in one (only when ``encodes_jointly``): the image and
        text features of the normalised ``images`` (B, 3, H, W) and the
        class set, the towers of ``clip`` advanced together.
        ``return_tokens``: also the (B, 1+N, D) tokens of the image pass."""
        raise NotImplementedError(
            f'{type(self).__name__} does not encode jointly')


class BaseVisualPrompt(BaseModule):
    """Base class of visual prompt modules (stage 5 of the pipeline).

    ``forward(text_features, image, anchors=None)`` reads the text features
    ``g`` ((1|B, C, D), from the prompted text branch), the frozen image pass
    (None unless ``needs.frozen_image``) and, when ``needs.anchors``, the
    (C, D) class anchors ``t0``; it returns :class:`VisualPrompts`.

    Attributes:
        needs: what forward reads (abstract: every module declares it).
    """

    @property
    @abstractmethod
    def needs(self) -> Needs:
        """What forward reads from the pipeline (see the class docs)."""

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
        needs: what forward reads (abstract: every module declares it).
            ``image_tokens``: forward reads the tokens of the image pass;
            ``value_tokens``: it reads the value-path readout instead.
    """

    @property
    @abstractmethod
    def needs(self) -> Needs:
        """What forward reads from the pipeline (see the class docs)."""

    def forward(self, image_features: Tensor, text_features: Tensor,
                image_tokens: Optional[Tensor]) -> Tensor:
        raise NotImplementedError
