"""TVP: text-reorganized visual prompt (reconstruction).

"Mutual Prompt Learning for Vision Language Models" (IJCV 2024). From the
paper (abstract level, DESIGN.md): visual prompts ignore the text, and the
text descriptions of an image hold redundant and negative category
semantics; TVP reorganizes the text descriptions of the current image
(dropping redundant / negative categories) and builds the visual prompt from
them, guiding the image branch to class-related representations.

The project's reading (every choice is a constructor option, defaults first):

* affinity ``p_b = softmax(cos(f0_b, T_c) / tau)`` between the frozen global
  image feature and the current classes' text features ``T``: the text
  branch's ``g`` [``text_source='text'``; gradients flow back into the text
  prompts, so the text prompts the image] or the frozen anchors ``t0``
  (``'anchors'``); ``tau`` [0.01, CLIP's logit scale 100];
* keep the top-k classes [k = min(5, C)] and drop the rest; the kept
  affinities are renormalised (a softmax over the kept scores), so a dropped
  class has no influence at all;
* ``Mv`` learnable visual queries [4] attend over the kept, normalised text
  features (multi-head cross-attention with CTP's projections [8 heads]),
  weighted by the kept affinities ``p_b``: ``weighting='scores'`` [default]
  adds ``log p_{b,j}`` to the attention scores, i.e. the attention weights
  are ``p_{b,j} exp(q k_j)`` renormalised (with flat scores: the
  affinity-weighted mean of the kept texts); ``'values'`` scales the value of
  kept class j by ``k p_{b,j}`` instead -> ``R_b`` (B, Mv, D);
* ``Linear(D, Dv)`` maps ``R_b`` to the visual prompt tokens appended after
  the patch tokens [depth 1]; with ``depth = J > 1`` layers ``1 .. J-1`` get
  deep prompts from ``R_b`` through their own ``Linear(D, Dv)``.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..utils.checks import check_choice, check_int
from ..utils.errors import ConfigError
from .base import (BaseVisualPrompt, FrozenImageFeatures, Needs,
                   VisualPrompts)
from .deep import resolve_depth
from .layers import PriorWeightedAttention

TEXT_SOURCES = ('text', 'anchors')
WEIGHTINGS = ('scores', 'values')
DEFAULT_TOP_K = 5


@MODELS.register_module()
class TVP(BaseVisualPrompt):
    """Text-reorganized visual prompt (reconstruction of the IJCV 2024 mutual
    prompt learning TVP; see the module docstring for what is the paper's
    and what is the project's reading).

    Args:
        clip: the frozen CLIP (read for the widths and layer count).
        n_prompts: visual prompt tokens / queries Mv [4].
        top_k: classes kept per image; None = min(5, C) [None]. An explicit
            k must lie in [1, C] for every class set it meets.
        tau: softmax temperature of the affinities [0.01].
        weighting: how the kept affinities weight the attention: 'scores'
            (log-affinity added to the attention scores) [default] or
            'values' (values scaled by k * affinity).
        text_source: 'text' (the text branch's features ``g``) [default] or
            'anchors' (the frozen hand-crafted ``t0``).
        depth: layers carrying visual prompts J [1]; J > 1 adds deep prompts
            for layers 1 .. J-1, each with its own projection.
        depth_overflow: 'clip' J to the image encoder's layers (warning) or
            'error' ['clip'].
        num_heads: cross-attention heads [8].
        project_values: value/output projections of the attention [True].
        score_scale: attention score factor [None = 1/sqrt(head width)].
    """

    def __init__(self,
                 clip,
                 n_prompts: int = 4,
                 top_k: Optional[int] = None,
                 tau: float = 0.01,
                 text_source: str = 'text',
                 weighting: str = 'scores',
                 depth: int = 1,
                 depth_overflow: str = 'clip',
                 num_heads: int = 8,
                 project_values: bool = True,
                 score_scale: Optional[float] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        check_choice('text_source', text_source, TEXT_SOURCES)
        check_choice('weighting', weighting, WEIGHTINGS)
        check_int('n_prompts', n_prompts, owner='TVP')
        if top_k is not None:
            check_int('top_k', top_k, owner='TVP')
        if tau <= 0:
            raise ConfigError(f'TVP: tau must be > 0, got {tau}')
        self.top_k = top_k
        self.tau = float(tau)
        self.text_source = text_source
        self.weighting = weighting
        self.depth = resolve_depth(clip, depth, need_vision=True,
                                   overflow=depth_overflow, owner='TVP')
        dim = clip.embed_dim
        self.queries = nn.Parameter(
            torch.empty(n_prompts, dim, device=clip.device).normal_(std=0.02))
        self.attention = PriorWeightedAttention(
            dim, num_heads, project_values, normalize_inputs=True,
            score_scale=score_scale).to(clip.device)
        self.projections = nn.ModuleList([
            nn.Linear(dim, clip.vision_width) for _ in range(self.depth)
        ]).to(clip.device)

    @property
    def needs(self) -> Needs:
        return Needs(frozen_image=True,
                     anchors=self.text_source == 'anchors')

    def num_kept(self, num_classes: int) -> int:
        """k for a class set of ``num_classes`` classes."""
        if self.top_k is None:
            return min(DEFAULT_TOP_K, num_classes)
        if self.top_k > num_classes:
            raise ConfigError(f'TVP: top_k={self.top_k} is out of range for '
                              f'{num_classes} classes (need 1 <= top_k <= '
                              f'{num_classes}; top_k=None uses min(5, C))')
        return self.top_k

    def reorganized_text(self, text: Tensor, global_feature: Tensor):
        """Keep each image's top-k classes.

        Args:
            text: (1|B, C, D) text features T.
            global_feature: (B, D) frozen ``f0``.

        Returns:
            kept (B, k, D) normalised text features, the log of their
            renormalised affinities (B, k) and class indices (B, k).
        """
        t = F.normalize(text.float(), dim=-1)
        f = F.normalize(global_feature.float(), dim=-1)
        scores = torch.einsum('bd,bcd->bc', f,
                              t.expand(f.shape[0], -1, -1)) / self.tau
        k = self.num_kept(t.shape[1])
        kept_scores, index = scores.topk(k, dim=1)  # (B, k)
        kept = t.expand(f.shape[0], -1, -1).gather(
            1, index.unsqueeze(-1).expand(-1, -1, t.shape[-1]))
        return kept, kept_scores.log_softmax(dim=1), index

    def forward(self,
                text_features: Tensor,
                image: Optional[FrozenImageFeatures],
                anchors: Optional[Tensor] = None) -> VisualPrompts:
        """
        Args:
            text_features: (1|B, C, D) text features ``g``.
            image: the frozen image pass (``f0`` (B, D)).
            anchors: (C, D) class anchors (``text_source='anchors'``).

        Returns:
            (B, Mv, Dv) prompts and, for depth J > 1, J-1 deep prompts.
        """
        if image is None:
            raise ValueError('TVP needs the frozen image features')
        if self.text_source == 'anchors':
            if anchors is None:
                raise ValueError("TVP(text_source='anchors') needs the class "
                                 'anchors')
            text_features = anchors.unsqueeze(0)
        kept, log_p, _ = self.reorganized_text(text_features,
                                               image.global_feature)
        queries = self.queries.unsqueeze(0)
        if self.weighting == 'scores':
            r = self.attention(queries, kept, log_p)  # (B, Mv, D)
        else:
            r = self.attention(queries, kept, torch.zeros_like(log_p),
                               kept.shape[1] * log_p.exp())
        prompts = [proj(r) for proj in self.projections]  # J x (B, Mv, Dv)
        return VisualPrompts(prompts=prompts[0],
                             deep_prompts=prompts[1:] or None)
