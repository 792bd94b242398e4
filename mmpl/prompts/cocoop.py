"""CoCoOp: context vectors shifted by an image-conditioned meta-net.

Zhou et al., "Conditional Prompt Learning for Vision-Language Models"
(CVPR 2022). A meta-net Linear(D, D/16)-ReLU-Linear(D/16, Dt) maps the
normalised frozen image feature to one shift that is added to every context
token of every class: prompts are (B, C, L, Dt). The classifier encodes all
B*C prompts in one batched, chunked text-encoder call.
"""
from typing import Optional

import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor

from ..clip import ClassTokens
from .base import BaseTextPrompt, FrozenImageFeatures, Needs, TextPrompts
from .context import context_prompts, init_context
from .layers import bottleneck_mlp  # noqa: F401 (also its old import path)


@MODELS.register_module()
class CoCoOp(BaseTextPrompt):
    """Conditional context optimisation.

    Args:
        clip: the frozen CLIP (read for widths and the init embedding).
        n_ctx: number of context vectors M [4].
        ctx_init: initialisation phrase ['a photo of a'].
        reduction: meta-net bottleneck reduction [16].
    """
    #: the context shift is computed from the frozen image feature ``f0``
    needs = Needs(frozen_image=True)

    def __init__(self,
                 clip,
                 n_ctx: int = 4,
                 ctx_init: Optional[str] = 'a photo of a',
                 reduction: int = 16,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.n_ctx = n_ctx
        self.ctx = init_context(clip, n_ctx, ctx_init)
        self.context_phrase = ctx_init
        self.meta_net = bottleneck_mlp(clip.embed_dim, clip.text_width,
                                       reduction).to(clip.device)

    def shift(self, image: FrozenImageFeatures) -> Tensor:
        """(B, D) frozen image features -> (B, Dt) context shift."""
        return self.meta_net(F.normalize(image.global_feature.float(), dim=-1))

    def forward(self,
                class_tokens: ClassTokens,
                image: Optional[FrozenImageFeatures] = None,
                anchors: Optional[Tensor] = None) -> TextPrompts:
        if image is None:
            raise ValueError('CoCoOp needs the frozen image features')
        ctx = (self.ctx.unsqueeze(0) +
               self.shift(image).unsqueeze(1)).unsqueeze(1)  # (B,1,M,Dt)
        return context_prompts(ctx, class_tokens)  # (B, C, L, Dt)
