"""DGPrompt: dual-guidance, layer-wise generation of text and visual prompts.

Reconstruction of Neural Networks 2025, "DGPrompt: Dual-guidance prompts
generation for vision-language models" (the paper's equations are not
available; see DESIGN.md). Both towers carry M prompt tokens in every layer
l < J. Layer 0 uses the base prompts; for l = 1 .. J-1::

    V_l = Vbase_l + G_tv_l(T_{l-1}) + alpha * V_{l-1}   (text guides vision)
    T_l = Tbase_l + G_vt_l(V_{l-1}) + alpha * T_{l-1}   (vision guides text)

``G`` is a linear mapper [default] or a cross-attention from the target's base
prompts over the (projected) source prompts; the ``alpha`` residual carries
the previous layer's generated prompts (hierarchical context). Generated
prompts are new tensors (never written into parameters), so every guidance
module receives gradients. ``guidance='none'`` gives deep *independent*
prompts in both towers (PromptSRC-style, with ``alpha=0``).

Guidance reads prompts, not the image, so text features are shared by the
batch. With ``image_conditioned=True`` a CoCoOp-style meta-net per tower adds
a per-image shift to the layer-0 prompts and the guidance chain carries it to
every layer: prompts become (B, ...) and the classifier encodes the B*C text
sequences in one chunked call (``text_chunk_size``).
"""
from typing import List, Optional, Tuple

import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..clip import ClassTokens
from ..utils.checks import check_choice
from ..utils.errors import ConfigError
from .base import (BaseTextPrompt, FrozenImageFeatures, Needs,
                   TextPrompts)
from .context import init_context, insert_context, shared_prefix_length
from .deep import layer_prompts, resolve_depth
from .layers import bottleneck_mlp

GUIDANCE_TYPES = ('linear', 'cross_attention', 'none')


class LinearGuidance(nn.Module):
    """Maps the source tower's prompts to the target width, token by token.

    forward(source (..., M, Ds), base (M, Dd)) -> (..., M, Dd)
    """

    def __init__(self, source_dim: int, target_dim: int):
        super().__init__()
        self.mapper = nn.Linear(source_dim, target_dim)

    def forward(self, source: Tensor, base: Tensor) -> Tensor:
        return self.mapper(source)


class CrossAttentionGuidance(nn.Module):
    """The target's base prompts (queries) attend over the source prompts
    projected to the target width (keys/values).

    forward(source (M, Ds) | (B, M, Ds), base (M, Dd)) -> same lead dims, Dd
    """

    def __init__(self, source_dim: int, target_dim: int, num_heads: int = 8):
        super().__init__()
        if target_dim % num_heads:
            raise ConfigError(f'guidance_heads={num_heads} does not divide '
                              f'the prompt width {target_dim}')
        self.kv = nn.Linear(source_dim, target_dim)
        self.attn = nn.MultiheadAttention(target_dim, num_heads,
                                          batch_first=True)

    def forward(self, source: Tensor, base: Tensor) -> Tensor:
        unbatched = source.dim() == 2
        kv = self.kv(source if not unbatched else source.unsqueeze(0))
        query = base.unsqueeze(0).expand(kv.shape[0], -1, -1)
        out = self.attn(query, kv, kv, need_weights=False)[0]
        return out[0] if unbatched else out


def _guidance(kind: str, source_dim: int, target_dim: int,
              heads: int) -> nn.Module:
    if kind == 'linear':
        return LinearGuidance(source_dim, target_dim)
    return CrossAttentionGuidance(source_dim, target_dim, heads)


@MODELS.register_module()
class DGPrompt(BaseTextPrompt):
    """Dual-guidance deep prompt generation (reconstruction).

    Args:
        clip: the frozen CLIP (widths, layers, init phrase).
        n_ctx: text prompt tokens per layer M [2].
        n_visual: visual prompt tokens per layer [None = n_ctx]; linear
            guidance needs n_visual == n_ctx.
        depth: prompted layers J in both towers [9].
        ctx_init: phrase whose first M token embeddings initialise the
            layer-0 text prompts; its other tokens stay in the prompt,
            frozen, as in MaPLe ['a photo of a']; None for N(0, 0.02).
        guidance: 'linear' [default], 'cross_attention' or 'none'
            (independent deep prompts).
        guidance_heads: heads of the cross-attention guidance [8].
        alpha: weight of the residual from the previous layer's generated
            prompts [0.1].
        image_conditioned: add a per-image shift (meta-nets on ``f0``) to the
            layer-0 prompts of both towers [False].
        depth_overflow: J above the layer count: 'clip' (warn) or 'error'.
    """
    produces_visual_prompts = True

    def __init__(self,
                 clip,
                 n_ctx: int = 2,
                 n_visual: Optional[int] = None,
                 depth: int = 9,
                 ctx_init: Optional[str] = 'a photo of a',
                 guidance: str = 'linear',
                 guidance_heads: int = 8,
                 alpha: float = 0.1,
                 image_conditioned: bool = False,
                 depth_overflow: str = 'clip',
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        check_choice('guidance', guidance, GUIDANCE_TYPES)
        n_visual = n_visual or n_ctx
        if guidance == 'linear' and n_visual != n_ctx:
            raise ConfigError(f'guidance={guidance!r} maps prompts token by '
                              f'token: n_visual ({n_visual}) must equal n_ctx '
                              f'({n_ctx})')
        self.n_ctx = n_ctx
        self.depth = resolve_depth(clip, depth, True, depth_overflow,
                                   'DGPrompt')
        self.guidance = guidance
        self.alpha = float(alpha)
        self.per_image = image_conditioned
        dt, dv, device = clip.text_width, clip.vision_width, clip.device
        self.ctx = init_context(clip, n_ctx, ctx_init)  # Tbase_0 (M, Dt)
        self.context_phrase = ctx_init
        self.deep_text = layer_prompts(self.depth - 1, n_ctx, dt, device)
        self.visual = layer_prompts(self.depth, n_visual, dv, device)
        if guidance == 'none':
            self.text_to_visual = self.visual_to_text = None
        else:
            self.text_to_visual = nn.ModuleList([
                _guidance(guidance, dt, dv, guidance_heads)
                for _ in range(self.depth - 1)
            ]).to(device)
            self.visual_to_text = nn.ModuleList([
                _guidance(guidance, dv, dt, guidance_heads)
                for _ in range(self.depth - 1)
            ]).to(device)
        if image_conditioned:
            self.text_meta_net = bottleneck_mlp(clip.embed_dim, dt).to(device)
            self.visual_meta_net = bottleneck_mlp(clip.embed_dim,
                                                  dv).to(device)

    @property
    def needs(self) -> Needs:
        return Needs(frozen_image=self.per_image)

    def generate(self, image: Optional[FrozenImageFeatures] = None
                 ) -> Tuple[List[Tensor], List[Tensor]]:
        """Generate the prompts of every layer l < J.

        Returns:
            text prompts and visual prompts, J each; (M, D) shared or
            (B, M, D) per image when image-conditioned.
        """
        text, visual = self.ctx, self.visual[0]
        if self.per_image:
            if image is None:
                raise ValueError('DGPrompt(image_conditioned=True) needs the '
                                 'frozen image features')
            f0 = F.normalize(image.global_feature.float(), dim=-1)
            text = text + self.text_meta_net(f0).unsqueeze(1)  # (B, M, Dt)
            visual = visual + self.visual_meta_net(f0).unsqueeze(1)
        texts, visuals = [text], [visual]
        for layer in range(1, self.depth):
            prev_t, prev_v = texts[-1], visuals[-1]
            base_t, base_v = self.deep_text[layer - 1], self.visual[layer]
            text, visual = base_t, base_v
            if self.guidance != 'none':
                text = text + self.visual_to_text[layer - 1](prev_v, base_t)
                visual = visual + self.text_to_visual[layer - 1](prev_t,
                                                                 base_v)
            if self.alpha:
                text = text + self.alpha * prev_t
                visual = visual + self.alpha * prev_v
            texts.append(text)
            visuals.append(visual)
        return texts, visuals

    def forward(self,
                class_tokens: ClassTokens,
                image: Optional[FrozenImageFeatures] = None,
                anchors: Optional[Tensor] = None) -> TextPrompts:
        texts, visuals = self.generate(image)
        ctx = texts[0] if texts[0].dim() == 2 else texts[0].unsqueeze(1)
        prompts = insert_context(ctx, class_tokens.prefix,
                                 class_tokens.suffix)  # (1|B, C, L, Dt)
        return TextPrompts(embeddings=prompts,
                           eot_index=class_tokens.eot_index,
                           shared_prefix=shared_prefix_length(
                               ctx, class_tokens.n_frozen_context),
                           deep_prompts=texts[1:],
                           visual_prompts=visuals[0],
                           deep_visual_prompts=visuals[1:])
