"""CTP: class-aware text prompt (reconstruction).

Long et al., "Task-Oriented Multi-Modal Mutual Learning for Vision-Language
Models" (ICCV 2023). From the paper (abstract level, DESIGN.md): CoCoOp adds
the *same* image-conditioned bias to the prompts of every class, which weakens
the discrimination between classes; CTP instead gives each class's prompt
*label-related* image information.

The project's reading (every choice is a constructor option):

* for each class c, a query from the frozen hand-crafted text feature
  (anchor) ``t0_c`` attends over the frozen image tokens ``Z0_b`` with
  multi-head cross-attention [8 heads] -> ``u_{b,c}`` (B, C, D);
* CoCoOp's meta-net (Linear(D, D/16)-ReLU-Linear(D/16, Dt)) maps the
  normalised ``u_{b,c}`` to a shift added to the context tokens of class c
  only: prompts are (B, C, L, Dt), encoded by the classifier in one batched,
  chunked text-encoder call.

With ``attend_over='global'`` and ``project_values=False`` the attention has
a single key whose value is ``f0_b`` itself, so ``u_{b,c} = f0_b`` and CTP is
exactly CoCoOp (a test).
"""
from typing import Optional

import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor

from ..clip import ClassTokens
from ..utils.checks import check_choice
from .base import (BaseTextPrompt, FrozenImageFeatures, Needs,
                   TextPrompts)
from .context import init_context, insert_context, shared_prefix_length
from .layers import (TOKEN_SETS, QueryTokenAttention, bottleneck_mlp,
                     select_tokens)

@MODELS.register_module()
class CTP(BaseTextPrompt):
    """Class-aware text prompt (reconstruction of TOMM's CTP, see the module
    docstring for what is the paper's and what is the project's reading).

    Args:
        clip: the frozen CLIP (read for widths and the init embedding).
        n_ctx: number of context vectors M [4].
        ctx_init: initialisation phrase ['a photo of a'].
        reduction: meta-net bottleneck reduction [16] (CoCoOp's meta-net).
        num_heads: cross-attention heads [8] (reading).
        attend_over: keys/values: 'tokens' (class + patch tokens of the
            frozen image pass) [default], 'patches' (patch tokens only) or
            'global' (the global feature only; needs no tokens, so it also
            works with non-ViT towers). Reading.
        project_values: learned value/output projections [True]; False makes
            the attention output a convex combination of the tokens (with
            'global', exactly CoCoOp). Reading.
        normalize_inputs: L2-normalise anchors and tokens before the score
            projections [True]. Reading.
        class_chunk_size: classes per attention call (None = all); bounds the
            (B, H, C, K) attention memory for large class sets (ImageNet).
        score_scale: attention score factor [None = 1/sqrt(head width)].
    """

    def __init__(self,
                 clip,
                 n_ctx: int = 4,
                 ctx_init: Optional[str] = 'a photo of a',
                 reduction: int = 16,
                 num_heads: int = 8,
                 attend_over: str = 'tokens',
                 project_values: bool = True,
                 normalize_inputs: bool = True,
                 class_chunk_size: Optional[int] = 128,
                 score_scale: Optional[float] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        check_choice('attend_over', attend_over, TOKEN_SETS)
        self.n_ctx = n_ctx
        self.attend_over = attend_over
        self.ctx = init_context(clip, n_ctx, ctx_init)
        self.context_phrase = ctx_init
        self.meta_net = bottleneck_mlp(clip.embed_dim, clip.text_width,
                                       reduction).to(clip.device)
        self.attention = QueryTokenAttention(
            clip.embed_dim, num_heads, project_values, normalize_inputs,
            class_chunk_size, score_scale).to(clip.device)

    @property
    def needs(self) -> Needs:
        # The global feature is always computed; tokens only when asked for.
        return Needs(frozen_image=True, anchors=True,
                     image_tokens=self.attend_over != 'global')

    def class_image_features(self, image: FrozenImageFeatures,
                             anchors: Tensor) -> Tensor:
        """u: (C, D) anchors attend over each image's tokens -> (B, C, D)."""
        tokens = select_tokens(image.global_feature, image.tokens,
                               self.attend_over, 'CTP')
        return self.attention(anchors.float().unsqueeze(0), tokens)

    def shift(self, class_image_features: Tensor) -> Tensor:
        """(B, C, D) -> (B, C, Dt) per-class context shift."""
        return self.meta_net(F.normalize(class_image_features, dim=-1))

    def forward(self,
                class_tokens: ClassTokens,
                image: Optional[FrozenImageFeatures] = None,
                anchors: Optional[Tensor] = None) -> TextPrompts:
        if image is None or anchors is None:
            raise ValueError('CTP needs the frozen image features and the '
                             'class anchors')
        if anchors.shape[0] != class_tokens.num_classes:
            raise ValueError(f'CTP got {anchors.shape[0]} anchors for '
                             f'{class_tokens.num_classes} classes')
        shift = self.shift(self.class_image_features(image, anchors))
        ctx = self.ctx + shift.unsqueeze(2)  # (B, C, M, Dt)
        prompts = insert_context(ctx, class_tokens.prefix,
                                 class_tokens.suffix)  # (B, C, L, Dt)
        return TextPrompts(embeddings=prompts,
                           eot_index=class_tokens.eot_index,
                           shared_prefix=shared_prefix_length(
                               ctx, class_tokens.n_frozen_context))
