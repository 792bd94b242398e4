"""Zero-shot CLIP as a text prompt module: the hand-crafted template.

Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision" (ICML 2021): class text features of the dataset's template
(e.g. 'a centered satellite photo of {}.'), nothing learned. It is the
reference row of every prompt-learning table; run it with tools/test.py and
no checkpoint.
"""
from typing import Optional

from mmpretrain.registry import MODELS
from torch import Tensor

from ..clip import ClassTokens
from .base import BaseTextPrompt, FrozenImageFeatures, Needs, TextPrompts


@MODELS.register_module()
class ZeroShotCLIP(BaseTextPrompt):
    """Text features = the class anchors ``t0`` of the template (the
    classifier's ``template``, else the dataset's)."""
    needs = Needs(anchors=True)

    def __init__(self, clip=None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)

    def forward(self,
                class_tokens: ClassTokens,
                image: Optional[FrozenImageFeatures] = None,
                anchors: Optional[Tensor] = None) -> TextPrompts:
        if anchors is None:
            raise ValueError('ZeroShotCLIP needs the class anchors')
        return TextPrompts(embeddings=None, eot_index=None,
                           features=anchors.unsqueeze(0))  # (1, C, D)
