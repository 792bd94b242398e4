"""Layers that several prompt methods build on (method files import them
from here, never from each other).

* :func:`bottleneck_mlp`: CoCoOp's meta-net (CoCoOp, CTP, FTP, DGPrompt);
* :class:`GroupedBottleneck`: M bottleneck MLPs in one batched matmul (FTP);
* :class:`QueryTokenAttention`: per-class / per-query cross-attention over
  image tokens (CTP, TFT, FTP's queries);
* :class:`PriorWeightedAttention`: the same with a prior on the keys (TVP);
* :class:`SimilarityPooling`: dense features pooled by their cosine
  similarity to per-class queries at a learnable CLIP-like scale (CTP, TFT);
* :func:`select_tokens` / :data:`TOKEN_SETS`: which image tokens attend;
  :func:`dense_tokens`: which dense readout (final tokens / value path).
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..utils.checks import check_int
from ..utils.errors import ConfigError

#: keys/values of the attention: class + patch tokens, patches, global
TOKEN_SETS = ('tokens', 'patches', 'global')
#: dense readouts of the frozen image pass (final tokens / value path)
DENSE_READOUTS = ('tokens', 'values')


def bottleneck_mlp(in_dim: int, out_dim: int,
                   reduction: int = 16) -> nn.Module:
    """CoCoOp's meta-net: Linear(in, in/r) - ReLU - Linear(in/r, out)."""
    hidden = max(1, in_dim // reduction)
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, out_dim))


def select_tokens(global_feature: Tensor, tokens: Optional[Tensor],
                  attend_over: str, owner: str) -> Tensor:
    """Keys/values of the attention: (B, K, D), in fp32.

    Args:
        global_feature: (B, D) pooled image feature.
        tokens: (B, 1+N, D) class + patch tokens, or None.
        attend_over: 'tokens' (class + patch tokens, K = 1+N), 'patches'
            (patch tokens only, K = N) or 'global' (the global feature
            alone, K = 1).
        owner: the module's name, for the error message.
    """
    if attend_over == 'global':
        return global_feature.float().unsqueeze(1)
    if tokens is None:
        raise ValueError(f'{owner}(attend_over={attend_over!r}) needs the '
                         'image tokens, but none were computed')
    tokens = tokens.float()
    return tokens[:, 1:] if attend_over == 'patches' else tokens


def dense_tokens(image, dense: str, attend_over: str, owner: str) -> Tensor:
    """Keys of a pooling over the frozen pass ``image``
    (:class:`~mmpl.structures.FrozenImageFeatures`): (B, K, D) fp32 from
    the dense readout ``dense`` ('tokens' | 'values'), see
    :func:`select_tokens`."""
    tokens = None if attend_over == 'global' else image.dense(dense)
    return select_tokens(image.global_feature, tokens, attend_over,
                         f'{owner}(dense={dense!r})')


class SimilarityPooling(nn.Module):
    """Pool dense features by their cosine similarity to per-class queries,
    CLIP's own patch-text comparison:
    ``a_{b,c,n} = softmax_n(tau cos(q_c, Z_{b,n}))``,
    ``out_{b,c} = sum_n a_{b,c,n} Z_{b,n}``.

    Args:
        dim: feature width D.
        scale_init: initial ``tau`` (the CLIP's logit scale).
        learn_scale: ``tau`` learnable (log-parametrised) [True].
        query_key_maps: residual query/key maps ``x + W x`` with ``W``
            zero-initialised (the identity at the start) [False].
    """

    def __init__(self, dim: int, scale_init: float,
                 learn_scale: bool = True, query_key_maps: bool = False):
        super().__init__()
        if scale_init <= 0:
            raise ConfigError(f"scale_init must be > 0, got {scale_init}")
        log_scale = torch.tensor(math.log(scale_init))
        if learn_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer('log_scale', log_scale)
        self.q_map = self.k_map = None
        if query_key_maps:
            self.q_map, self.k_map = nn.Linear(dim, dim), nn.Linear(dim, dim)
            for layer in (self.q_map, self.k_map):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    @property
    def scale(self) -> Tensor:
        return self.log_scale.exp()

    def weights(self, queries: Tensor, tokens: Tensor) -> Tensor:
        """(1|B, C, D) queries, (B, K, D) tokens -> (B, C, K) weights (each
        row sums to 1)."""
        if self.q_map is not None:
            queries = queries + self.q_map(queries)
            tokens = tokens + self.k_map(tokens)
        q = F.normalize(queries, dim=-1)
        k = F.normalize(tokens, dim=-1)
        return torch.softmax(self.scale * q @ k.transpose(1, 2), dim=-1)

    def forward(self, queries: Tensor, tokens: Tensor) -> Tensor:
        """(1|B, C, D) queries, (B, K, D) tokens -> (B, C, D) pooled raw
        (un-mapped) tokens."""
        return self.weights(queries, tokens) @ tokens


class GroupedBottleneck(nn.Module):
    """``num_heads`` independent bottleneck MLPs (CoCoOp's meta-net, built
    with :func:`bottleneck_mlp` for its widths and
    initialisation) evaluated on the same input in one batched matmul.

    Head ``m`` holds the weights of ``bottleneck_mlp(in_dim, out_dim)``:
    ``out_m = W2_m relu(W1_m x + b1_m) + b2_m``.
    """

    def __init__(self, in_dim: int, out_dim: int, num_heads: int,
                 reduction: int = 16):
        super().__init__()
        mlps = [bottleneck_mlp(in_dim, out_dim, reduction)
                for _ in range(num_heads)]
        self.weight1 = nn.Parameter(torch.stack([m[0].weight for m in mlps]))
        self.bias1 = nn.Parameter(torch.stack([m[0].bias for m in mlps]))
        self.weight2 = nn.Parameter(torch.stack([m[2].weight for m in mlps]))
        self.bias2 = nn.Parameter(torch.stack([m[2].bias for m in mlps]))

    @property
    def num_heads(self) -> int:
        return self.weight1.shape[0]

    def load_mlp(self, mlp: nn.Sequential) -> None:
        """Copy one ``bottleneck_mlp`` into every head (tying them)."""
        with torch.no_grad():
            self.weight1.copy_(mlp[0].weight.expand_as(self.weight1))
            self.bias1.copy_(mlp[0].bias.expand_as(self.bias1))
            self.weight2.copy_(mlp[2].weight.expand_as(self.weight2))
            self.bias2.copy_(mlp[2].bias.expand_as(self.bias2))

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_dim) (one input for every head) or (B, num_heads, in_dim)
        (head m reads ``x[:, m]``) -> (B, num_heads, out_dim)."""
        equation = 'bd,mhd->bmh' if x.dim() == 2 else 'bmd,mhd->bmh'
        hidden = torch.einsum(equation, x, self.weight1) + self.bias1
        hidden = F.relu(hidden)
        return torch.einsum('bmh,moh->bmo', hidden, self.weight2) + self.bias2


class QueryTokenAttention(nn.Module):
    """Multi-head cross-attention of per-class queries over image tokens,
    batched over images and chunked over classes (the memory bound).

    Scores use (optionally L2-normalised) queries and keys through learned
    projections; values are projected (``project_values=True``: v- and
    output projections, as ``nn.MultiheadAttention``) or the raw tokens
    (``False``: the output is a per-head convex combination of the tokens,
    so a single key returns that token exactly).

    Args:
        dim: query/key width D.
        num_heads: attention heads [8]; must divide ``dim``.
        project_values: learned value and output projections [True].
        normalize_inputs: L2-normalise queries and keys before their
            projections [True] (CLIP features are compared by cosine).
        class_chunk_size: queries per attention call (None = all at once).
        score_scale: factor of the query-key dot products; None =
            1/sqrt(head width), as ``nn.MultiheadAttention``. With
            normalised inputs the default scores are small and the attention
            starts close to uniform; a larger scale (CLIP compares
            normalised features at 100) makes it sharper from the start.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int = 8,
                 project_values: bool = True,
                 normalize_inputs: bool = True,
                 class_chunk_size: Optional[int] = None,
                 score_scale: Optional[float] = None):
        super().__init__()
        if num_heads < 1 or dim % num_heads:
            raise ValueError(f'num_heads={num_heads} must divide the feature '
                             f'width {dim}')
        if class_chunk_size is not None:
            check_int('class_chunk_size', class_chunk_size)
        self.num_heads = num_heads
        self.normalize_inputs = normalize_inputs
        self.class_chunk_size = class_chunk_size
        self.score_scale = score_scale or 1.0 / math.sqrt(dim // num_heads)
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim) if project_values else None
        self.out_proj = nn.Linear(dim, dim) if project_values else None
        for layer in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            if layer is not None:  # nn.MultiheadAttention's initialisation
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def _heads(self, x: Tensor) -> Tensor:
        """(B, n, D) -> (B, H, n, D/H)."""
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def forward(self, queries: Tensor, tokens: Tensor) -> Tensor:
        """
        Args:
            queries: (1|B, C, D) per-class queries (shared or per image).
            tokens: (B, K, D) keys/values of each image.

        Returns:
            (B, C, D) attention outputs.
        """
        if self.normalize_inputs:
            queries = F.normalize(queries, dim=-1)
            keys = F.normalize(tokens, dim=-1)
        else:
            keys = tokens
        k = self._heads(self.k_proj(keys))  # (B, H, K, d)
        v = self._heads(self.v_proj(tokens) if self.v_proj is not None
                        else tokens)  # (B, H, K, d)
        chunk = self.class_chunk_size or queries.shape[1]
        outputs = []
        for start in range(0, queries.shape[1], chunk):  # class chunks
            q = self._heads(self.q_proj(queries[:, start:start + chunk]))
            attn = torch.softmax(q @ k.transpose(-2, -1) * self.score_scale,
                                 dim=-1)
            outputs.append((attn @ v).transpose(1, 2).flatten(2))  # (B,c,D)
        out = torch.cat(outputs, dim=1) if len(outputs) > 1 else outputs[0]
        return self.out_proj(out) if self.out_proj is not None else out


class PriorWeightedAttention(QueryTokenAttention):
    """Cross-attention of shared queries over a few tokens per image whose
    attention weights are multiplied by a prior (added to the scores in log
    space) and renormalised; the projections are
    :class:`QueryTokenAttention`'s."""

    def forward(self, queries: Tensor, tokens: Tensor, log_prior: Tensor,
                value_weights: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            queries: (1|B, Q, D) queries.
            tokens: (B, K, D) keys/values.
            log_prior: (B, K) log prior of every token.
            value_weights: (B, K) factors of the tokens as values (the keys
                stay the tokens), or None.

        Returns:
            (B, Q, D).
        """
        keys = F.normalize(tokens, dim=-1) if self.normalize_inputs \
            else tokens
        q = F.normalize(queries, dim=-1) if self.normalize_inputs \
            else queries
        q = self._heads(self.q_proj(q).expand(tokens.shape[0], -1, -1))
        if value_weights is not None:
            tokens = tokens * value_weights.unsqueeze(-1)
        values = self.v_proj(tokens) if self.v_proj is not None else tokens
        out = F.scaled_dot_product_attention(
            q, self._heads(self.k_proj(keys)), self._heads(values),
            attn_mask=log_prior[:, None, None, :].to(q.dtype),
            scale=self.score_scale).transpose(1, 2).flatten(2)  # (B, Q, D)
        return self.out_proj(out) if self.out_proj is not None else out
