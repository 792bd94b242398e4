"""Learnable context vectors, initialised as the authors' code does.

One rule for every method that takes ``ctx_init``: the context is the
embedding of the phrase's first ``M`` tokens, and the phrase's remaining tokens
stay in the prompt as frozen words before the class name (the layout is built
by :func:`mmpl.clip.build_class_tokens` from the module's ``context_phrase``).
CoOp/CoCoOp/KgCoOp use phrases of exactly ``M`` tokens ('a photo of a', M=4);
MaPLe, IVLP and PromptSRC-style prompts with M=2 keep 'of a' frozen.
"""
from typing import Optional

import torch
from torch import Tensor, nn

from ..clip import ClassTokens, context_init_embedding
from ..structures import TextPrompts
from ..utils.errors import ConfigError


def check_n_ctx(n_ctx: int, context_length: int = 77) -> None:
    if (not isinstance(n_ctx, int) or isinstance(n_ctx, bool)
            or not 1 <= n_ctx < context_length - 2):
        raise ConfigError(
            f'n_ctx must be an integer in [1, {context_length - 3}], got '
            f'{n_ctx!r}')


def init_context(clip, n_ctx: int, ctx_init: Optional[str],
                 num_vectors: Optional[int] = None) -> nn.Parameter:
    """Context parameter (M, Dt), or (num_vectors, M, Dt) for class-specific
    contexts: the embedding of the first ``n_ctx`` tokens of ``ctx_init``
    (e.g. 'a photo of a'; underscores count as spaces) when given, else
    N(0, 0.02) (CoOp). The module keeps ``ctx_init`` as its
    ``context_phrase`` so that the rest of the phrase stays in the prompt."""
    check_n_ctx(n_ctx, clip.context_length)
    if ctx_init:
        ctx = context_init_embedding(clip, ctx_init, n_ctx).float()
        if num_vectors is not None:
            ctx = ctx.unsqueeze(0).repeat(num_vectors, 1, 1)
    else:
        shape = (n_ctx, clip.text_width) if num_vectors is None else (
            num_vectors, n_ctx, clip.text_width)
        ctx = torch.empty(shape).normal_(std=0.02)
    return nn.Parameter(ctx.to(clip.device))


def shared_prefix_length(ctx: Tensor, n_frozen_context: int = 0) -> int:
    """Length of the prefix ``[SOS] ctx_1 .. ctx_M <frozen phrase words>``
    that :func:`insert_context` makes the same for every class: 1 + M + the
    frozen words (``ClassTokens.n_frozen_context``) unless the context is per
    class ((C, M, Dt) or (B, C>1, M, Dt)), then 0."""
    per_class = ctx.dim() == 3 or (ctx.dim() == 4 and ctx.shape[1] > 1)
    return 0 if per_class else 1 + ctx.shape[-2] + n_frozen_context


def insert_context(ctx: Tensor, prefix: Tensor, suffix: Tensor) -> Tensor:
    """Write context vectors into the class prompts, after SOS.

    Args:
        ctx: (M, Dt) shared, (C, M, Dt) per class, (B, 1, M, Dt) per image or
            (B, C, M, Dt) per image and class.
        prefix: (C, 1, Dt) SOS embeddings.
        suffix: (C, S, Dt) frozen phrase words, class name, '.', EOT
            embeddings.

    Returns:
        (1, C, L, Dt) or (B, C, L, Dt) prompt embeddings.
    """
    if ctx.dim() == 2:
        ctx = ctx.unsqueeze(0)  # (1, M, Dt)
    if ctx.dim() == 3:
        ctx = ctx.unsqueeze(0)  # (1, 1|C, M, Dt)
    batch = ctx.shape[0]
    num_classes = prefix.shape[0]
    ctx = ctx.expand(batch, num_classes, -1, -1).to(prefix.dtype)
    return torch.cat([
        prefix.unsqueeze(0).expand(batch, -1, -1, -1), ctx,
        suffix.unsqueeze(0).expand(batch, -1, -1, -1)
    ], dim=2)


def context_prompts(ctx: Tensor, class_tokens: ClassTokens,
                    **fields) -> TextPrompts:
    """The text prompts of context ``ctx`` (any shape of
    :func:`insert_context`) in the class prompts of ``class_tokens``:
    (1|B, C, L, Dt) embeddings, the EOT positions and the prefix shared by
    the classes (:func:`shared_prefix_length`). ``fields``: the other
    :class:`~mmpl.structures.TextPrompts` fields (deep and visual prompts,
    losses)."""
    return TextPrompts(
        embeddings=insert_context(ctx, class_tokens.prefix,
                                  class_tokens.suffix),
        eot_index=class_tokens.eot_index,
        shared_prefix=shared_prefix_length(ctx,
                                           class_tokens.n_frozen_context),
        **fields)
