"""MaPLe: multi-modal prompt learning with text-to-vision coupling.

Khattak et al., "MaPLe: Multi-modal Prompt Learning" (CVPR 2023), as in the
authors' code: M=2 context tokens initialised from 'a photo of a' (its first
two tokens, 'a photo'), the rest of the phrase kept in the prompt as frozen
tokens (``[SOS] c1 c2 of a <name> . [EOT]``, the layout rule of
:mod:`mmpl.prompts.context`), deep text prompts N(0, 0.02) for layers 1 .. J-1
(J=9), and the visual prompts of every layer l < J are the image of that
layer's text prompts under a per-layer coupling Linear(Dt, Dv). Layer 0's
visual prompts are appended after the patch tokens; deeper ones replace them.
Text features do not depend on the image (shared across the batch).
"""
import copy
from typing import Optional

from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..clip import ClassTokens
from .base import BaseTextPrompt, FrozenImageFeatures, Needs, TextPrompts
from .context import context_prompts, init_context
from .deep import layer_prompts, resolve_depth


@MODELS.register_module()
class MaPLe(BaseTextPrompt):
    """Multi-modal prompt learning.

    Args:
        clip: the frozen CLIP (read for widths, layers and the init phrase).
        n_ctx: prompt tokens per layer M [2].
        depth: number of prompted layers J [9] (layer 0 + J-1 deep layers).
        ctx_init: phrase whose first M token embeddings initialise the
            shallow context; its other tokens stay in the prompt, frozen
            ['a photo of a']; None for N(0, 0.02) and ``[SOS] c1 c2 <name>``.
        depth_overflow: J larger than the model's layer count: 'clip' it to
            the layer count (with a warning) or raise an 'error'.
    """

    needs = Needs()  # the class tokens only
    produces_visual_prompts = True

    def __init__(self,
                 clip,
                 n_ctx: int = 2,
                 depth: int = 9,
                 ctx_init: Optional[str] = 'a photo of a',
                 depth_overflow: str = 'clip',
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.n_ctx = n_ctx
        self.depth = resolve_depth(clip, depth, True, depth_overflow, 'MaPLe')
        self.ctx = init_context(clip, n_ctx, ctx_init)  # (M, Dt)
        self.context_phrase = ctx_init
        self.deep_text = layer_prompts(self.depth - 1, n_ctx, clip.text_width,
                                       clip.device)
        coupling = nn.Linear(clip.text_width, clip.vision_width)
        self.proj = coupling.to(clip.device)
        # The authors clone one initialised Linear for the deep layers.
        self.deep_proj = nn.ModuleList([
            copy.deepcopy(coupling) for _ in range(self.depth - 1)
        ]).to(clip.device)

    def forward(self,
                class_tokens: ClassTokens,
                image: Optional[FrozenImageFeatures] = None,
                anchors: Optional[Tensor] = None) -> TextPrompts:
        deep_text = list(self.deep_text)  # J-1 x (M, Dt)
        return context_prompts(  # (1, C, L, Dt)
            self.ctx, class_tokens,
            deep_prompts=deep_text,
            visual_prompts=self.proj(self.ctx),  # (M, Dv)
            deep_visual_prompts=[
                proj(p) for proj, p in zip(self.deep_proj, deep_text)
            ])
