"""CTP: class-aware text prompt (reconstruction, second reading).

Long et al., "Task-Oriented Multi-Modal Mutual Learning for Vision-Language
Models" (ICCV 2023). The paper (abstract level): CoCoOp adds the *same*
image-conditioned bias to the prompts of every class, which weakens the
discrimination between classes; CTP instead gives each class's prompt
*label-related image information*.

The project's reading (DESIGN.md "Method specifications"; every choice is a
constructor option, defaults in brackets):

* class c's image evidence pools image b's frozen *dense* patch features
  ``Z0_b`` (B, N, D) by CLIP's own patch-text similarity to the class
  anchor ``t0_c``: ``a_{b,c,n} = softmax_n(tau cos(t0_c, Z0_{b,n}))``,
  ``u_{b,c} = sum_n a_{b,c,n} Z0_{b,n}`` (B, C, D); ``tau`` learnable,
  initialised to the CLIP's logit scale; optional residual query/key maps
  initialised to the identity. So the pooling is label-related from the
  first step (the property test: on a two-object image class c's mass lies
  on object c's patches).
* dense readout ``dense`` ['values']: the last block's value path
  (MaskCLIP), which localises on ViT CLIPs where the final patch outputs do
  not (docs/methods_tomm_mpl.md: the lab's tiny CLIP);
  'tokens' = the final patch outputs.
* CoCoOp's meta-net (Linear(D, D/16)-ReLU-Linear(D/16, Dt)) maps the
  normalised ``u_{b,c}`` to a shift added to the context tokens of class c
  only: prompts (B, C, L, Dt), encoded in one batched text-encoder call.

First reading, kept as the ablation ``pooling='attention'``: multi-head
cross-attention with learned projections (near-uniform at initialisation).
With ``attend_over='global'`` there is one key, ``u_{b,c} = f0_b`` and CTP is
exactly CoCoOp (a test).
"""
from typing import Optional

import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor

from ..clip import ClassTokens
from ..utils.checks import check_choice
from ..utils.errors import ConfigError
from .base import BaseTextPrompt, FrozenImageFeatures, Needs, TextPrompts
from .context import context_prompts, init_context
from .layers import (DENSE_READOUTS, TOKEN_SETS, QueryTokenAttention,
                     SimilarityPooling, bottleneck_mlp, dense_tokens)

POOLINGS = ('similarity', 'attention')


@MODELS.register_module()
class CTP(BaseTextPrompt):
    """Class-aware text prompt (reconstruction of TOMM's CTP, see the module
    docstring for what is the paper's and what is the project's reading).

    Args:
        clip: the frozen CLIP (read for widths, logit scale, init embedding).
        n_ctx: number of context vectors M [4].
        ctx_init: initialisation phrase ['a photo of a'].
        reduction: meta-net bottleneck reduction [16] (CoCoOp's meta-net).
        pooling: 'similarity' (anchor-patch cosine softmax) [default] or
            'attention' (first reading: learned multi-head cross-attention).
        dense: dense readout, 'values' (last block's value path) [default]
            or 'tokens' (final patch outputs).
        attend_over: keys: 'patches' (patch tokens) [default], 'tokens'
            (class + patch tokens) or 'global' (``f0`` alone: CoCoOp; works
            with non-ViT towers).
        tau_init: initial similarity scale [None = the CLIP's logit scale].
        learn_tau: the scale is learnable [True].
        query_key_maps: identity-initialised residual query/key maps [False].
        num_heads, project_values, normalize_inputs, class_chunk_size,
        score_scale: options of ``pooling='attention'`` only (see
            :class:`~mmpl.prompts.layers.QueryTokenAttention`).
    """

    def __init__(self,
                 clip,
                 n_ctx: int = 4,
                 ctx_init: Optional[str] = 'a photo of a',
                 reduction: int = 16,
                 pooling: str = 'similarity',
                 dense: str = 'values',
                 attend_over: str = 'patches',
                 tau_init: Optional[float] = None,
                 learn_tau: bool = True,
                 query_key_maps: bool = False,
                 num_heads: int = 8,
                 project_values: bool = True,
                 normalize_inputs: bool = True,
                 class_chunk_size: Optional[int] = 128,
                 score_scale: Optional[float] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        check_choice('pooling', pooling, POOLINGS)
        check_choice('dense', dense, DENSE_READOUTS)
        check_choice('attend_over', attend_over, TOKEN_SETS)
        self.n_ctx = n_ctx
        self.pooling = pooling
        self.dense = dense
        self.attend_over = attend_over
        self.ctx = init_context(clip, n_ctx, ctx_init)
        self.context_phrase = ctx_init
        self.meta_net = bottleneck_mlp(clip.embed_dim, clip.text_width,
                                       reduction).to(clip.device)
        if pooling == 'similarity':
            scale = tau_init or float(clip.logit_scale)
            self.attention = SimilarityPooling(
                clip.embed_dim, scale, learn_tau,
                query_key_maps).to(clip.device)
        else:
            self.attention = QueryTokenAttention(
                clip.embed_dim, num_heads, project_values, normalize_inputs,
                class_chunk_size, score_scale).to(clip.device)

    @property
    def needs(self) -> Needs:
        # The global feature is always computed; tokens only when asked for.
        dense = self.attend_over != 'global'
        return Needs(frozen_image=True, anchors=True,
                     image_tokens=dense and self.dense == 'tokens',
                     value_tokens=dense and self.dense == 'values')

    def keys(self, image: FrozenImageFeatures) -> Tensor:
        """(B, K, D) fp32 features the anchors pool (K = N patches by
        default, in the grid's row-major order)."""
        return dense_tokens(image, self.dense, self.attend_over, 'CTP')

    def attention_weights(self, image: FrozenImageFeatures,
                          anchors: Tensor) -> Tensor:
        """(B, C, K) weights of each class over the keys
        (``pooling='similarity'``)."""
        if self.pooling != 'similarity':
            raise ConfigError("CTP.attention_weights needs "
                             "pooling='similarity'")
        return self.attention.weights(anchors.float().unsqueeze(0),
                                      self.keys(image))

    def class_image_features(self, image: FrozenImageFeatures,
                             anchors: Tensor) -> Tensor:
        """u: (C, D) anchors pool each image's keys -> (B, C, D)."""
        return self.attention(anchors.float().unsqueeze(0), self.keys(image))

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
        return context_prompts(ctx, class_tokens)  # (B, C, L, Dt)
