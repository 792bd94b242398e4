"""IVLP: independent deep vision-language prompts.

The baseline of MaPLe (Khattak et al., CVPR 2023) and PromptSRC (Khattak et
al., ICCV 2023), as the official PromptSRC repository implements it
(``trainers/independentVL.py`` and its ``clip/model.py``, commit bb95c77):
both towers carry learnable prompts in their first J layers, with no
coupling between them.

* Text: M tokens right after ``[SOS]`` (``ctx``, initialised from the first
  M token embeddings of ``ctx_init``; with M = 4 and 'a photo of a' no frozen
  phrase word is left), shared by every class; in layers 1 .. J-1 the
  ``deep_text`` tokens replace the previous layer's M outputs at those
  positions.
* Image: Mv tokens appended after the class and patch tokens, after the
  positional embedding, before ``ln_pre`` (``visual[0]``); in layers
  1 .. J-1 the ``visual[l]`` tokens replace the last Mv tokens of that
  layer's input.
* Init: ``ctx`` from the phrase, every other prompt N(0, 0.02) as the
  official ``CLIP.__init__`` draws them.

The papers' setting: M = Mv = 4, J = 9, 'a photo of a', SGD lr 2.5e-3, 20
epochs, batch 4 (``configs/ivlp/``). PromptSRC is IVLP plus its
self-regularisation (``configs/promptsrc/``). The prompts do not depend on
the image, so the text features are shared by the batch and cached in
evaluation. :class:`~mmpl.prompts.DGPrompt` extends this module with the
guidance maps and the residual ``alpha``.
"""
from typing import List, Optional, Tuple

import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor

from ..clip import ClassTokens
from .base import BaseTextPrompt, FrozenImageFeatures, Needs, TextPrompts
from .context import context_prompts, init_context
from .deep import layer_prompts, resolve_depth
from .layers import bottleneck_mlp


@MODELS.register_module()
class IVLP(BaseTextPrompt):
    """Independent deep prompts in both towers (see the module docstring).

    Args:
        clip: the frozen CLIP (widths, layers, init phrase).
        n_ctx: text prompt tokens per layer M [4].
        n_visual: visual prompt tokens per layer Mv [None = n_ctx].
        depth: prompted layers J in both towers [9].
        ctx_init: phrase whose first M token embeddings initialise the
            layer-0 text prompts; its other tokens stay in the prompt,
            frozen (the MaPLe layout) ['a photo of a']; None for
            N(0, 0.02).
        image_conditioned: add a per-image shift (CoCoOp-style meta-nets on
            the frozen image feature ``f0``) to the layer-0 prompts of both
            towers [False; not in the papers].
        depth_overflow: J above the layer count: 'clip' (warn) or 'error'.
    """
    produces_visual_prompts = True
    #: weight of the previous layer's prompts added to each deep layer's
    #: (0 here: independent prompts; DGPrompt's hierarchical residual)
    alpha: float = 0.0

    def __init__(self,
                 clip,
                 n_ctx: int = 4,
                 n_visual: Optional[int] = None,
                 depth: int = 9,
                 ctx_init: Optional[str] = 'a photo of a',
                 image_conditioned: bool = False,
                 depth_overflow: str = 'clip',
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        n_visual = n_visual or n_ctx
        self.n_ctx, self.n_visual = n_ctx, n_visual
        self.depth = resolve_depth(clip, depth, True, depth_overflow,
                                   type(self).__name__)
        self.per_image = image_conditioned
        dt, dv, device = clip.text_width, clip.vision_width, clip.device
        self.ctx = init_context(clip, n_ctx, ctx_init)  # Tbase_0 (M, Dt)
        self.context_phrase = ctx_init
        self.deep_text = layer_prompts(self.depth - 1, n_ctx, dt, device)
        self.visual = layer_prompts(self.depth, n_visual, dv, device)
        if image_conditioned:
            self.text_meta_net = bottleneck_mlp(clip.embed_dim, dt).to(device)
            self.visual_meta_net = bottleneck_mlp(clip.embed_dim,
                                                  dv).to(device)

    @property
    def needs(self) -> Needs:
        return Needs(frozen_image=self.per_image)

    def _layer0(self, image: Optional[FrozenImageFeatures]
                ) -> Tuple[Tensor, Tensor]:
        """Layer-0 text (M, Dt) and visual (Mv, Dv) prompts, (B, ...) with
        the per-image shifts of ``image_conditioned``."""
        text, visual = self.ctx, self.visual[0]
        if self.per_image:
            if image is None:
                raise ValueError(f'{type(self).__name__}(image_conditioned='
                                 'True) needs the frozen image features')
            f0 = F.normalize(image.global_feature.float(), dim=-1)
            text = text + self.text_meta_net(f0).unsqueeze(1)  # (B, M, Dt)
            visual = visual + self.visual_meta_net(f0).unsqueeze(1)
        return text, visual

    def generate(self, image: Optional[FrozenImageFeatures] = None
                 ) -> Tuple[List[Tensor], List[Tensor]]:
        """The prompts of every layer l < J (plus the ``alpha`` residual of
        the previous layer's, 0 in IVLP).

        Returns:
            text prompts and visual prompts, J each; (M, D) shared or
            (B, M, D) per image when image-conditioned.
        """
        text, visual = self._layer0(image)
        texts, visuals = [text], [visual]
        for layer in range(1, self.depth):
            text = self.deep_text[layer - 1] + self.alpha * texts[-1]
            visual = self.visual[layer] + self.alpha * visuals[-1]
            texts.append(text)
            visuals.append(visual)
        return texts, visuals

    def forward(self,
                class_tokens: ClassTokens,
                image: Optional[FrozenImageFeatures] = None,
                anchors: Optional[Tensor] = None) -> TextPrompts:
        """Prompts for the ordinary encoders: (1|B, C, L, Dt) text
        embeddings with the deep text prompts, and the visual prompts."""
        texts, visuals = self.generate(image)
        ctx = texts[0] if texts[0].dim() == 2 else texts[0].unsqueeze(1)
        return context_prompts(
            ctx, class_tokens, deep_prompts=texts[1:],
            visual_prompts=visuals[0], deep_visual_prompts=visuals[1:])
