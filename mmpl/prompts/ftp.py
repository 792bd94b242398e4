"""FTP: fine-grained text prompt (reconstruction, second reading).

"Mutual Prompt Learning for Vision Language Models" (IJCV 2024). The paper
(abstract level): CoCoOp adds the *same* global image feature to every
learnable text token, which concentrates the prompts on one or a few
characteristics of the image; FTP *decomposes the single global feature into
finer-grained semantics*, one per prompt token.

The project's reading (DESIGN.md "Method specifications"; every choice is a
constructor option, defaults first):

* ``decomposition='orthogonal'``: a learnable orthogonal basis ``U`` (D, D)
  (torch's orthogonal parametrisation) split into M column blocks ``U_m``;
  ``s_{b,m} = U_m U_m^T f0_b`` (B, M, D), so ``sum_m s_{b,m} = f0_b``
  exactly and the components are mutually orthogonal: an exact
  decomposition, not M views of the same vector.
  ``ctx_{b,m} = ctx_m + phi_m(s_{b,m} / |f0_b|)`` with M bottleneck maps
  Linear(D, D/16)-ReLU-Linear(D/16, Dt), one batched (grouped) matmul.
* first readings, kept as ablations: ``'heads'`` (the M maps all read the
  same normalised ``f0_b``; with ``tie_heads=True`` exactly CoCoOp, a test)
  and ``'queries'`` (M learnable queries attend over the frozen image
  tokens ``Z0_b`` with CTP's cross-attention, then a shared meta-net).
* ``tie_heads=True``: one map (or query) for every token.
* ``class_gating=True``: ``ctx_{b,c,m} = ctx_m + a_{c,m} s_{b,m}`` with
  ``a_c = 2 sigmoid(Linear(normalised t0_c))`` (anchors ``t0``),
  zero-initialised (a = 1); prompts are then (B, C, L, Dt).
* ``diversity_weight > 0``: the mean squared cosine similarity between
  different tokens' shifts, returned as ``TextPrompts.losses
  ['loss_ftp_diversity']`` [0 = off].

Property tests (tests/test_properties_mpl.py): the components sum to ``f0``
and are orthogonal; after a short training run the tokens' shifts are still
distinct.
"""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor, nn
from torch.nn.utils.parametrizations import orthogonal

from ..clip import ClassTokens
from ..utils.checks import check_choice
from ..utils.errors import ConfigError
from .base import BaseTextPrompt, FrozenImageFeatures, Needs, TextPrompts
from .context import context_prompts, init_context
from .layers import (TOKEN_SETS, GroupedBottleneck, QueryTokenAttention,
                     bottleneck_mlp, select_tokens)

DECOMPOSITIONS = ('orthogonal', 'heads', 'queries')


def diversity_loss(semantics: Tensor) -> Tensor:
    """Orthogonality of the M semantics of each image: the mean squared
    cosine similarity over the M*(M-1) pairs of different tokens.

    Args:
        semantics: (B, M, Dt).

    Returns:
        scalar; 0 when the semantics of every image are orthogonal (and for
        M = 1).
    """
    s = F.normalize(semantics, dim=-1)
    gram = s @ s.transpose(1, 2)  # (B, M, M)
    n = semantics.shape[1]
    off_diagonal = gram - torch.eye(n, device=gram.device, dtype=gram.dtype)
    return off_diagonal.pow(2).sum((1, 2)).mean() / max(1, n * (n - 1))


@MODELS.register_module()
class FTP(BaseTextPrompt):
    """Fine-grained text prompt (reconstruction of the IJCV 2024 mutual
    prompt learning FTP; see the module docstring for what is the paper's and
    what is the project's reading).

    Args:
        clip: the frozen CLIP (read for widths and the init embedding).
        n_ctx: number of context vectors M [4]; also the number of semantics.
        ctx_init: initialisation phrase ['a photo of a'].
        reduction: bottleneck reduction of every head [16].
        decomposition: 'orthogonal' (exact orthogonal decomposition of
            ``f0``) [default], 'heads' (M maps of the same ``f0``) or
            'queries' (M queries attending over the image tokens + FFN).
        tie_heads: one head/query shared by all tokens [False] (CoCoOp).
        class_gating: per-class gates from the anchors ``t0`` [False].
        diversity_weight: weight of the orthogonality loss on S [0 = off].
        num_heads: attention heads of the 'queries' decomposition [8].
        attend_over: tokens the queries attend over ('tokens', 'patches' or
            'global', see :func:`~mmpl.prompts.layers.select_tokens`).
        project_values: value/output projections of the attention [True].
        score_scale: attention score factor [None = 1/sqrt(head width)].
    """

    def __init__(self,
                 clip,
                 n_ctx: int = 4,
                 ctx_init: Optional[str] = 'a photo of a',
                 reduction: int = 16,
                 decomposition: str = 'orthogonal',
                 tie_heads: bool = False,
                 class_gating: bool = False,
                 diversity_weight: float = 0.0,
                 num_heads: int = 8,
                 attend_over: str = 'tokens',
                 project_values: bool = True,
                 score_scale: Optional[float] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        check_choice('decomposition', decomposition, DECOMPOSITIONS)
        check_choice('attend_over', attend_over, TOKEN_SETS)
        if diversity_weight < 0:
            raise ConfigError(f'diversity_weight must be >= 0, got '
                              f'{diversity_weight}')
        self.n_ctx = n_ctx
        self.decomposition = decomposition
        self.diversity_weight = float(diversity_weight)
        self.attend_over = attend_over
        self.ctx = init_context(clip, n_ctx, ctx_init)
        self.context_phrase = ctx_init
        n_semantics = 1 if tie_heads else n_ctx
        dim, width = clip.embed_dim, clip.text_width
        if decomposition == 'orthogonal':
            if n_ctx > dim:
                raise ConfigError(f'FTP: n_ctx={n_ctx} components cannot '
                                  f'split a {dim}-dim feature')
            self.basis = orthogonal(
                nn.Linear(dim, dim, bias=False)).to(clip.device)
            # (M, D) 0/1: which basis vectors (columns of U) block m holds
            blocks = torch.arange(dim).tensor_split(n_ctx)
            mask = torch.zeros(n_ctx, dim)
            for m, cols in enumerate(blocks):  # once, at build
                mask[m, cols] = 1.0
            self.register_buffer('block_mask', mask.to(clip.device),
                                 persistent=False)
        if decomposition in ('orthogonal', 'heads'):
            self.heads = GroupedBottleneck(dim, width, n_semantics,
                                           reduction).to(clip.device)
        else:
            self.queries = nn.Parameter(
                torch.empty(n_semantics, dim,
                            device=clip.device).normal_(std=0.02))
            self.attention = QueryTokenAttention(
                dim, num_heads, project_values, normalize_inputs=True,
                score_scale=score_scale).to(clip.device)
            self.meta_net = bottleneck_mlp(dim, width,
                                           reduction).to(clip.device)
        self.gate = None
        if class_gating:
            self.gate = nn.Linear(dim, n_ctx).to(clip.device)
            nn.init.zeros_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)

    @property
    def needs(self) -> Needs:
        return Needs(frozen_image=True,
                     image_tokens=(self.decomposition == 'queries'
                                   and self.attend_over != 'global'),
                     anchors=self.gate is not None)

    def components(self, global_feature: Tensor) -> Tensor:
        """The orthogonal decomposition of (B, D) features: (B, M, D)
        components ``U_m U_m^T f0`` that sum to ``f0``."""
        u = self.basis.weight  # (D, D) orthogonal
        coeff = global_feature.float() @ u  # (B, D) coordinates in U
        return (coeff.unsqueeze(1) * self.block_mask) @ u.t()  # (B, M, D)

    def semantics(self, image: FrozenImageFeatures) -> Tensor:
        """The per-token shifts S: (B, M, Dt) (all M rows equal when the
        heads of the 'heads' decomposition are tied)."""
        if self.decomposition == 'orthogonal':
            f0 = image.global_feature.float()
            parts = self.components(f0) / f0.norm(dim=-1)[:, None, None]
            if self.heads.num_heads == 1:  # tied: one map for every part
                return self.heads(parts.flatten(0, 1)).view(
                    f0.shape[0], self.n_ctx, -1)
            return self.heads(parts)
        if self.decomposition == 'heads':
            s = self.heads(F.normalize(image.global_feature.float(), dim=-1))
        else:
            tokens = select_tokens(image.global_feature, image.tokens,
                                   self.attend_over, 'FTP')
            u = self.attention(self.queries.unsqueeze(0), tokens)  # (B,M,D)
            s = self.meta_net(F.normalize(u, dim=-1))
        return s.expand(-1, self.n_ctx, -1)

    def class_gates(self, anchors: Tensor) -> Tensor:
        """(C, D) anchors -> (C, M) gates in (0, 2), 1 at initialisation."""
        return 2 * torch.sigmoid(self.gate(F.normalize(anchors.float(),
                                                       dim=-1)))

    def forward(self,
                class_tokens: ClassTokens,
                image: Optional[FrozenImageFeatures] = None,
                anchors: Optional[Tensor] = None) -> TextPrompts:
        if image is None:
            raise ValueError('FTP needs the frozen image features')
        s = self.semantics(image)  # (B, M, Dt)
        if self.gate is None:
            ctx = (self.ctx + s).unsqueeze(1)  # (B, 1, M, Dt)
        else:
            if anchors is None:
                raise ValueError('FTP(class_gating=True) needs the class '
                                 'anchors')
            if anchors.shape[0] != class_tokens.num_classes:
                raise ValueError(f'FTP got {anchors.shape[0]} anchors for '
                                 f'{class_tokens.num_classes} classes')
            gates = self.class_gates(anchors)  # (C, M)
            ctx = self.ctx + gates.unsqueeze(-1) * s.unsqueeze(1)  # (B,C,M,Dt)
        losses: Dict[str, Tensor] = {}
        if self.diversity_weight > 0:
            losses['loss_ftp_diversity'] = (self.diversity_weight *
                                            diversity_loss(s))
        return context_prompts(ctx, class_tokens,  # (B, C, L, Dt)
                               losses=losses or None)
