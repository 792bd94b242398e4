"""CoOp: learnable context vectors shared by all images.

Zhou et al., "Learning to Prompt for Vision-Language Models" (IJCV 2022).
Prompt = [SOS, ctx_1 .. ctx_M, class-name tokens, '.', EOS]; unified context
(one ctx for all classes) or class-specific contexts (CSC); the class token
at the end, in the middle or in front of the context.
"""
from typing import Optional

import torch
from mmpretrain.registry import MODELS
from torch import Tensor

from ..clip import ClassTokens
from ..clip.class_tokens import phrase_token_count, readable_phrase
from ..utils.errors import ConfigError
from .base import BaseTextPrompt, FrozenImageFeatures, Needs, TextPrompts
from .context import init_context, insert_context, shared_prefix_length

CLASS_TOKEN_POSITIONS = ('end', 'middle', 'front')


def class_token_layout(name_lengths: Tensor, n_ctx: int, length: int,
                       position: str) -> Tensor:
    """Source index of every output token, for ``torch.gather`` over
    ``cat([ctx (C, M, Dt), tokens (C, L, Dt)], dim=1)``.

    ``tokens`` are laid out ``[SOS] X*M name . EOT``; the result places the
    ``M`` context vectors and the ``n_c`` name tokens as ``position`` asks,
    keeping every sequence's length and EOT position.

    Args:
        name_lengths: (C,) tokens per class name.
        n_ctx: M.
        length: L.
        position: 'end' | 'middle' | 'front'.

    Returns:
        (C, L) long indices into the (C, M + L, Dt) source.
    """
    m = n_ctx
    j = torch.arange(length, device=name_lengths.device).unsqueeze(0)  # (1,L)
    n = name_lengths.unsqueeze(1)  # (C, 1)
    token = m + j  # the original token j (after SOS: placeholders, name ...)
    if position == 'end':
        return torch.where((j >= 1) & (j <= m), j - 1, token).expand(
            n.shape[0], -1)
    half = m // 2 if position == 'middle' else 0
    # [SOS] ctx[:half] name ctx[half:] . EOT
    first_ctx = (j >= 1) & (j <= half)
    name = (j > half) & (j <= half + n)
    second_ctx = (j > half + n) & (j <= n + m)
    idx = torch.where(first_ctx, j - 1, token)
    idx = torch.where(name, m + m + j - half, idx)
    idx = torch.where(second_ctx, j - n - 1, idx)
    return idx


@MODELS.register_module()
class CoOp(BaseTextPrompt):
    """CoOp context optimisation.

    Args:
        clip: the frozen CLIP (read for widths and the init embedding).
        n_ctx: number of context vectors M (CoOp: 16; 4 with init).
        ctx_init: initialisation phrase (e.g. 'a photo of a', the authors'
            choice with n_ctx=4), or None for N(0, 0.02). Its first
            ``n_ctx`` tokens initialise the context; further tokens stay in
            the prompt as frozen words (class token at the end only).
        class_specific: one context per class (CSC); needs ``num_classes``
            and cannot be evaluated on another class set.
        num_classes: number of training classes (CSC only).
        class_token_position: 'end' | 'middle' | 'front'.
    """
    needs = Needs()  # the class tokens only

    def __init__(self,
                 clip,
                 n_ctx: int = 16,
                 ctx_init: Optional[str] = None,
                 class_specific: bool = False,
                 num_classes: Optional[int] = None,
                 class_token_position: str = 'end',
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if class_token_position not in CLASS_TOKEN_POSITIONS:
            raise ConfigError(f'class_token_position must be one of '
                              f'{CLASS_TOKEN_POSITIONS}, got '
                              f'{class_token_position!r}')
        if class_specific and not num_classes:
            raise ConfigError('CoOp(class_specific=True) needs num_classes')
        self.n_ctx = n_ctx
        self.class_specific = class_specific
        self.class_token_position = class_token_position
        self.ctx = init_context(clip, n_ctx, ctx_init,
                                num_classes if class_specific else None)
        self.context_phrase = ctx_init
        if (ctx_init and class_token_position != 'end' and phrase_token_count(
                clip, readable_phrase(ctx_init)) > n_ctx):
            raise ValueError(
                f'ctx_init {ctx_init!r} is longer than n_ctx={n_ctx}: its '
                'extra words stay frozen after the context, a layout that '
                "needs class_token_position='end'; use a phrase of n_ctx "
                'tokens')

    def forward(self,
                class_tokens: ClassTokens,
                image: Optional[FrozenImageFeatures] = None,
                anchors: Optional[Tensor] = None) -> TextPrompts:
        num_classes = class_tokens.num_classes
        ctx = self.ctx  # (M, Dt) or (C, M, Dt)
        if self.class_specific and ctx.shape[0] != num_classes:
            raise ConfigError(
                f'class-specific contexts were learned for {ctx.shape[0]} '
                f'classes but the current class set has {num_classes}; CSC '
                'cannot transfer to other classes (use class_specific=False)')
        shared_prefix = 0  # class name first / in the middle
        if self.class_token_position == 'end':
            prompts = insert_context(ctx, class_tokens.prefix,
                                     class_tokens.suffix)
            shared_prefix = shared_prefix_length(
                ctx, class_tokens.n_frozen_context)
        else:
            prompts = self._reorder(ctx, class_tokens).unsqueeze(0)
        return TextPrompts(embeddings=prompts,
                           eot_index=class_tokens.eot_index,
                           shared_prefix=shared_prefix)

    def _reorder(self, ctx: Tensor, class_tokens: ClassTokens) -> Tensor:
        """(C, L, Dt) prompts with the class name in front/middle."""
        tokens = class_tokens.embeddings  # (C, L, Dt)
        num_classes, length, width = tokens.shape
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(num_classes, -1, -1)
        source = torch.cat([ctx.to(tokens.dtype), tokens], dim=1)
        index = class_token_layout(class_tokens.name_lengths, self.n_ctx,
                                   length, self.class_token_position)
        return source.gather(1, index.unsqueeze(-1).expand(-1, -1, width))
