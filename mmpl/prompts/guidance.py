"""DGPrompt's guidance maps: one tower's layer-l states -> the other tower's
layer-l prompts.

Project's reading of "dual guidance" (DGPrompt, Neural Networks 2025; the
paper's equations are not available, see DESIGN.md): the source is a set of
K hidden states of one image in the source tower (image -> text: the CLS
and visual prompt tokens, K = 1+Mv; text -> image: the EOT states of the C
classes, K = C), optionally weighted; the output is the M prompt tokens of
the target tower for that image.

* :class:`LinearGuidance` [default]: pool the K states (weighted mean),
  LayerNorm, Linear(Ds, M*Dd) -> M tokens.
* :class:`CrossAttentionGuidance`: M learnable queries attend over the K
  LayerNorm-ed, projected states (the weights enter as log-weights on the
  attention logits).

Both start small: the generated tokens have the scale of the base prompts
(std ~0.02), so training starts near independent deep prompts, with
non-zero gradients along every path.
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..structures import full_precision
from ..utils.errors import ConfigError

GUIDANCE_TYPES = ('linear', 'cross_attention', 'none')
#: init std of the generated prompt tokens (that of the base prompts)
PROMPT_STD = 0.02


class LinearGuidance(nn.Module):
    """Pooled source states -> M target prompt tokens.

    forward(source (B, K, Ds), weights (B, K) | None) -> (B, M, Dd);
    ``weights`` sum to 1 over K (None: the mean).
    """

    def __init__(self, source_dim: int, target_dim: int, n_tokens: int):
        super().__init__()
        self.n_tokens = n_tokens
        self.norm = nn.LayerNorm(source_dim)
        self.mapper = nn.Linear(source_dim, n_tokens * target_dim)
        nn.init.normal_(self.mapper.weight,
                        std=PROMPT_STD / math.sqrt(source_dim))
        nn.init.zeros_(self.mapper.bias)

    def forward(self, source: Tensor,
                weights: Optional[Tensor] = None) -> Tensor:
        source = source.float()
        if weights is None:
            pooled = source.mean(1)  # (B, Ds)
        else:
            pooled = torch.einsum('bk,bkd->bd', weights.float(), source)
        out = self.mapper(self.norm(pooled))  # (B, M*Dd)
        return out.view(source.shape[0], self.n_tokens, -1)


class CrossAttentionGuidance(nn.Module):
    """M learnable queries attend over the source states.

    forward(source (B, K, Ds), weights (B, K) | None) -> (B, M, Dd)
    """

    def __init__(self, source_dim: int, target_dim: int, n_tokens: int,
                 num_heads: int = 8):
        super().__init__()
        if target_dim % num_heads:
            raise ConfigError(f'guidance_heads={num_heads} does not divide '
                              f'the prompt width {target_dim}')
        self.norm = nn.LayerNorm(source_dim)
        self.kv = nn.Linear(source_dim, target_dim)
        self.queries = nn.Parameter(
            torch.empty(n_tokens, target_dim).normal_(std=PROMPT_STD))
        self.attn = nn.MultiheadAttention(target_dim, num_heads,
                                          batch_first=True)
        nn.init.normal_(self.attn.out_proj.weight,
                        std=PROMPT_STD / math.sqrt(target_dim))
        self.num_heads = num_heads

    def forward(self, source: Tensor,
                weights: Optional[Tensor] = None) -> Tensor:
        kv = self.kv(self.norm(source.float()))  # (B, K, Dd)
        batch = kv.shape[0]
        query = self.queries.unsqueeze(0).expand(batch, -1, -1)
        mask = None
        if weights is not None:  # (B*H, M, K) log-weights
            mask = weights.float().clamp_min(1e-12).log()[:, None, None]
            mask = mask.expand(-1, self.num_heads, query.shape[1], -1)
            mask = mask.reshape(-1, query.shape[1], kv.shape[1])
        return self.attn(query, kv, kv, attn_mask=mask,
                         need_weights=False)[0]


def build_guidance(kind: str, source_dim: int, target_dim: int,
                   n_tokens: int, heads: int) -> nn.Module:
    """A guidance map of ``kind`` ('linear' | 'cross_attention')."""
    if kind == 'linear':
        return LinearGuidance(source_dim, target_dim, n_tokens)
    return CrossAttentionGuidance(source_dim, target_dim, n_tokens, heads)


def zero_shot_affinity(f0: Tensor, anchors: Tensor, scale: Tensor) -> Tensor:
    """(B, D) frozen image features, (C, D) anchors -> (B, C) the frozen
    zero-shot prediction softmax_c(scale * cos(f0_b, t0_c)) (no grad; fp32
    also under autocast: :func:`~mmpl.structures.full_precision`)."""
    with torch.no_grad(), full_precision(f0):
        cos = F.normalize(f0.float(), dim=-1) @ F.normalize(
            anchors.float(), dim=-1).t()
        return (scale.float() * cos).softmax(-1)
