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
import math
from typing import Optional

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..clip import ClassTokens
from ..utils.errors import ConfigError
from .base import BaseTextPrompt, FrozenImageFeatures, TextPrompts
from .cocoop import bottleneck_mlp
from .context import init_context, insert_context, shared_prefix_length

TOKEN_SETS = ('tokens', 'patches', 'global')


def select_tokens(image: FrozenImageFeatures, attend_over: str,
                  owner: str) -> Tensor:
    """Keys/values of the attention: (B, K, D).

    'tokens': class + patch tokens ``Z0`` (1+N); 'patches': patch tokens
    only (N); 'global': the pooled global feature ``f0`` alone (1).
    """
    if attend_over == 'global':
        return image.global_feature.float().unsqueeze(1)
    if image.tokens is None:
        raise ValueError(f'{owner}(attend_over={attend_over!r}) needs the '
                         'image tokens, but none were computed')
    tokens = image.tokens.float()
    return tokens[:, 1:] if attend_over == 'patches' else tokens


def check_choice(name: str, value: str, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f'{name} must be one of {choices}, got {value!r}')


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
            raise ConfigError(f'num_heads={num_heads} must divide the feature '
                              f'width {dim}')
        if class_chunk_size is not None and class_chunk_size < 1:
            raise ConfigError(f'class_chunk_size must be >= 1 or None, got '
                              f'{class_chunk_size}')
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
    image_conditioned = True
    needs_image_tokens = True
    needs_anchors = True

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
        # The global feature is always computed; tokens only when asked for.
        self.needs_image_tokens = attend_over != 'global'
        self.ctx = init_context(clip, n_ctx, ctx_init)
        self.meta_net = bottleneck_mlp(clip.embed_dim, clip.text_width,
                                       reduction).to(clip.device)
        self.attention = QueryTokenAttention(
            clip.embed_dim, num_heads, project_values, normalize_inputs,
            class_chunk_size, score_scale).to(clip.device)

    def class_image_features(self, image: FrozenImageFeatures,
                             anchors: Tensor) -> Tensor:
        """u: (C, D) anchors attend over each image's tokens -> (B, C, D)."""
        tokens = select_tokens(image, self.attend_over, 'CTP')
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
                           shared_prefix=shared_prefix_length(ctx))
