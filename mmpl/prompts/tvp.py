"""TVP: text-reorganized visual prompt (reconstruction, second reading).

"Mutual Prompt Learning for Vision Language Models" (IJCV 2024). The paper
(abstract level): visual prompts ignore the text; TVP *reorganises the text
descriptions of the current image, without the redundant and negative
category semantics*, and builds the visual prompt from them, guiding the
image branch to class-related representations.

The project's reading (DESIGN.md "Method specifications"; every choice is a
constructor option, defaults in brackets):

* affinity ``p_b = softmax_c(s cos(f0_b, g_c))`` over the current class set
  at the CLIP's own logit scale ``s`` [``tau=None``; ``tau`` = 1/s]; ``g``
  are the text branch's features [``text_source='text'``]: gradients flow
  from the visual prompt back into the text prompts (the text prompts the
  image); ``'anchors'`` uses the frozen ``t0``;
* *redundant* semantics = the component all class descriptions share:
  ``g~_c = g^_c - mean_c g^_c`` over the class set (``g^`` normalised)
  [``centre=True``]; adding one vector to every ``g^_c`` therefore leaves
  the visual prompt unchanged (the affinity softmax is shift-invariant too);
* *negative* categories = the classes outside the smallest top set whose
  affinity mass reaches ``rho`` [0.9] (at least 1, at most ``k_max`` [8])
  [``keep='mass'``]; they get no weight and no gradient: the kept
  affinities are renormalised, the attention masks the dropped classes out,
  and the class-set mean reads the dropped classes' features without
  gradient (its value is the mean over the whole set). First reading, kept
  as the ablation ``keep='topk'``: the top ``top_k`` [min(5, C)] classes
  (which drops nothing on a 5-class set);
* ``Mv`` learnable queries [4] attend over the kept centred features
  (multi-head cross-attention, 8 heads) weighted by the renormalised
  affinities (``weighting='scores'``: ``log p`` added to the scores;
  ``'values'``: values scaled by ``k p``) -> ``R_b`` (B, Mv, D) ->
  ``Linear(D, Dv)`` -> visual prompt tokens appended after the patch tokens
  [depth 1; ``depth = J > 1``: deep prompts with their own projections].

Property tests (tests/test_properties_mpl.py): the shift invariance, zero
gradient for a dropped class, a confident image on a 5-class set drops
classes, and the text prompt parameters receive gradient through TVP.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..structures import full_precision
from ..utils.checks import check_choice, check_int
from ..utils.errors import ConfigError
from .base import BaseVisualPrompt, FrozenImageFeatures, Needs, VisualPrompts
from .deep import resolve_depth
from .layers import PriorWeightedAttention

TEXT_SOURCES = ('text', 'anchors')
WEIGHTINGS = ('scores', 'values')
KEEP_RULES = ('mass', 'topk')
DEFAULT_TOP_K = 5


@MODELS.register_module()
class TVP(BaseVisualPrompt):
    """Text-reorganized visual prompt (reconstruction of the IJCV 2024 mutual
    prompt learning TVP; see the module docstring for what is the paper's
    and what is the project's reading).

    Args:
        clip: the frozen CLIP (read for the widths, layer count, logit
            scale).
        n_prompts: visual prompt tokens / queries Mv [4].
        keep: negative-class rule, 'mass' (smallest top set reaching
            ``rho``) [default] or 'topk' (first reading).
        rho: affinity mass the kept classes reach [0.9].
        k_max: at most this many kept classes [8].
        top_k: classes kept by ``keep='topk'``; None = min(5, C) [None]. An
            explicit k must lie in [1, C] for every class set it meets.
        tau: affinity temperature; None = 1 / the CLIP's logit scale [None].
        centre: remove the component shared by the class set [True].
        weighting: 'scores' (log-affinity added to the attention scores)
            [default] or 'values' (values scaled by k * affinity).
        text_source: 'text' (the text branch's features ``g``) [default] or
            'anchors' (the frozen hand-crafted ``t0``).
        depth: layers carrying visual prompts J [1].
        depth_overflow: 'clip' J to the image encoder's layers (warning) or
            'error' ['clip'].
        num_heads: cross-attention heads [8].
        project_values: value/output projections of the attention [True].
        score_scale: attention score factor [None = 1/sqrt(head width)].
    """

    def __init__(self,
                 clip,
                 n_prompts: int = 4,
                 keep: str = 'mass',
                 rho: float = 0.9,
                 k_max: int = 8,
                 top_k: Optional[int] = None,
                 tau: Optional[float] = None,
                 centre: bool = True,
                 text_source: str = 'text',
                 weighting: str = 'scores',
                 depth: int = 1,
                 depth_overflow: str = 'clip',
                 num_heads: int = 8,
                 project_values: bool = True,
                 score_scale: Optional[float] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        check_choice('keep', keep, KEEP_RULES, owner='TVP')
        check_choice('text_source', text_source, TEXT_SOURCES, owner='TVP')
        check_choice('weighting', weighting, WEIGHTINGS, owner='TVP')
        check_int('n_prompts', n_prompts, owner='TVP')
        check_int('k_max', k_max, owner='TVP')
        if top_k is not None:
            check_int('top_k', top_k, owner='TVP')
        if tau is not None and tau <= 0:
            raise ConfigError(f'TVP: tau must be > 0 (or None for the '
                              f"CLIP's logit scale), got {tau}")
        if not 0 < rho <= 1:
            raise ConfigError(f'TVP: rho must lie in (0, 1], got {rho}')
        self.keep = keep
        self.rho = float(rho)
        self.k_max = k_max
        self.top_k = top_k
        self.scale = 1.0 / tau if tau else float(clip.logit_scale)
        self.centre = centre
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
        """k of ``keep='topk'`` for a class set of ``num_classes``."""
        if self.top_k is None:
            return min(DEFAULT_TOP_K, num_classes)
        if self.top_k > num_classes:
            raise ConfigError(f'TVP: top_k={self.top_k} is out of range for '
                              f'{num_classes} classes (need 1 <= top_k <= '
                              f'{num_classes}; top_k=None uses min(5, C))')
        return self.top_k

    def kept_classes(self, scores: Tensor) -> Tensor:
        """(B, C) affinity logits -> (B, C) bool mask of the kept classes."""
        num_classes = scores.shape[1]
        if self.keep == 'topk':
            index = scores.topk(self.num_kept(num_classes), dim=1).indices
        else:
            p, index = scores.softmax(1).sort(dim=1, descending=True)
            before = p.cumsum(1) - p  # mass of the classes ranked higher
            rank = torch.arange(num_classes, device=scores.device)
            index = index.masked_fill(
                (before >= self.rho) | (rank >= self.k_max), -1)
            # dropped ranks point at a scratch column, cut off below
            index = torch.where(index < 0, num_classes, index)
        mask = scores.new_zeros(scores.shape[0], num_classes + 1,
                                dtype=torch.bool)
        return mask.scatter_(1, index, True)[:, :num_classes]

    def affinity_scores(self, unit_text: Tensor,
                        global_feature: Tensor) -> Tensor:
        """(1|B, C, D) L2-normalised class text features, (B, D) frozen
        ``f0`` -> (B, C) scaled cosines ``s cos(f0_b, g_c)``, the logits of
        the affinity (fp32 also under autocast: :func:`full_precision`)."""
        with full_precision(global_feature):
            f = F.normalize(global_feature.float(), dim=-1)
            t = unit_text.float().expand(f.shape[0], -1, -1)  # (B, C, D)
            return self.scale * torch.einsum('bd,bcd->bc', f, t)

    def reorganized_text(self, unit_text: Tensor, global_feature: Tensor
                         ) -> Tuple[Tensor, Tensor, Tensor]:
        """The reorganised descriptions of each image.

        Args:
            unit_text: (1|B, C, D) L2-normalised class text features.
            global_feature: (B, D) frozen ``f0``.

        Returns:
            the (B, C, D) centred features, the (B, C) log of the
            renormalised kept affinities (-inf for a dropped class) and the
            (B, C) bool mask of the kept classes.
        """
        t = unit_text.expand(global_feature.shape[0], -1, -1)  # (B, C, D)
        scores = self.affinity_scores(unit_text, global_feature)
        kept = self.kept_classes(scores.detach())
        log_p = scores.masked_fill(~kept, float('-inf')).log_softmax(1)
        if self.centre:
            # the class-set mean; dropped classes enter without gradient
            shared = torch.where(kept.unsqueeze(-1), t, t.detach()).mean(1)
            t = t - shared.unsqueeze(1)
        return t, log_p, kept

    def prompts_from_unit_text(self, unit_text: Tensor,
                               global_feature: Tensor) -> VisualPrompts:
        """The visual prompts from (1|B, C, D) normalised text features and
        the (B, D) frozen ``f0`` (``forward`` normalises, then calls this)."""
        t, log_p, kept = self.reorganized_text(unit_text, global_feature)
        queries = self.queries.unsqueeze(0)
        if self.weighting == 'scores':
            r = self.attention(queries, t, log_p)  # (B, Mv, D)
        else:
            k = kept.sum(1, keepdim=True)  # (B, 1)
            mask = torch.zeros_like(log_p).masked_fill(~kept, float('-inf'))
            r = self.attention(queries, t, mask, k * log_p.exp())
        prompts = [proj(r) for proj in self.projections]  # J x (B, Mv, Dv)
        return VisualPrompts(prompts=prompts[0],
                             deep_prompts=prompts[1:] or None)

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
        unit = F.normalize(text_features.float(), dim=-1)
        return self.prompts_from_unit_text(unit, image.global_feature)
