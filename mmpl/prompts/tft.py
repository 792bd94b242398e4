"""TFT: text-guided feature tuning (reconstruction).

Long et al., "Task-Oriented Multi-Modal Mutual Learning for Vision-Language
Models" (ICCV 2023). From the paper (abstract level, DESIGN.md): the image
branch attends to class-related representation, guided by the text.

The project's reading (every choice is a constructor option):

* per class: ``h_{b,c} = f_b + gamma * CrossAttn(query = g_{b,c},
  keys/values = Z_b)`` with the tokens ``Z_b`` of the (prompted) image pass,
  multi-head [8 heads], ``gamma`` learnable [init 0.1]; the classifier's
  logits become ``cos(h_{b,c}, g_{b,c})``. With ``gamma = 0`` the logits
  are exactly the un-tuned ones (a test).
* option ``class_agnostic``: one feature per image, the query being the
  text features weighted by the current prediction probabilities
  ``softmax(cos(f_b, g_c) / temperature)`` ("zero-shot probabilities" in
  DESIGN.md; here computed from the features the tuner receives, i.e. the
  prompted ones).

Works after any text prompt module (CoOp: (1, C, D) text features; CoCoOp,
CTP: (B, C, D)); needs a ViT image tower for the tokens (the classifier
refuses other towers at build time).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..utils.checks import check_choice
from ..utils.errors import ConfigError
from .base import BaseFeatureTuner, Needs
from .layers import QueryTokenAttention, select_tokens


@MODELS.register_module()
class TFT(BaseFeatureTuner):
    """Text-guided feature tuning (reconstruction of TOMM's TFT, see the
    module docstring for what is the paper's and what is the project's
    reading).

    Args:
        clip: the frozen CLIP (read for the embed width D).
        num_heads: cross-attention heads [8] (reading).
        gamma_init: initial value of the learnable residual weight [0.1].
        attend_over: 'tokens' (class + patch tokens) [default] or
            'patches' (patch tokens only). Reading.
        project_values: learned value/output projections [True]. Reading.
        normalize_inputs: L2-normalise queries and keys before the score
            projections [True]. Reading.
        class_agnostic: one tuned feature per image (B, D) from the
            probability-weighted text features, instead of per-class
            features (B, C, D) [False].
        temperature: softmax temperature of the class-agnostic weights
            [0.01, i.e. CLIP's logit scale of 100].
        class_chunk_size: classes per attention call (None = all); bounds
            the (B, H, C, K) attention memory.
        score_scale: attention score factor [None = 1/sqrt(head width)].
    """
    needs = Needs(image_tokens=True)

    def __init__(self,
                 clip,
                 num_heads: int = 8,
                 gamma_init: float = 0.1,
                 attend_over: str = 'tokens',
                 project_values: bool = True,
                 normalize_inputs: bool = True,
                 class_agnostic: bool = False,
                 temperature: float = 0.01,
                 class_chunk_size: Optional[int] = 128,
                 score_scale: Optional[float] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        check_choice('attend_over', attend_over, ('tokens', 'patches'))
        if temperature <= 0:
            raise ConfigError(f'temperature must be > 0, got {temperature}')
        self.attend_over = attend_over
        self.class_agnostic = class_agnostic
        self.temperature = temperature
        self.gamma = nn.Parameter(
            torch.tensor(float(gamma_init), device=clip.device))
        self.attention = QueryTokenAttention(
            clip.embed_dim, num_heads, project_values, normalize_inputs,
            class_chunk_size, score_scale).to(clip.device)

    def class_weighted_text(self, image_features: Tensor,
                            text_features: Tensor) -> Tensor:
        """(B, D), (1|B, C, D) -> (B, 1, D): normalised text features weighted
        by softmax(cos(f_b, g_c) / temperature) over the classes."""
        f = F.normalize(image_features, dim=-1).unsqueeze(1)  # (B, 1, D)
        g = F.normalize(text_features, dim=-1)  # (1|B, C, D)
        probs = torch.softmax((f * g).sum(-1) / self.temperature, dim=-1)
        return (probs.unsqueeze(-1) * g).sum(1, keepdim=True)

    def forward(self, image_features: Tensor, text_features: Tensor,
                image_tokens: Optional[Tensor]) -> Tensor:
        """
        Args:
            image_features: (B, D) image features ``f``.
            text_features: (1|B, C, D) text features ``g``.
            image_tokens: (B, 1+N, D) projected tokens of the image pass.

        Returns:
            (B, C, D) per-class features, or (B, D) when ``class_agnostic``.
        """
        if image_tokens is None:
            raise ValueError('TFT needs the image tokens of the image pass')
        tokens = select_tokens(image_features, image_tokens,
                               self.attend_over, 'TFT')
        f = image_features.float()
        g = text_features.float()
        if self.class_agnostic:
            query = self.class_weighted_text(f, g)  # (B, 1, D)
            return f + self.gamma * self.attention(query, tokens)[:, 0]
        return f.unsqueeze(1) + self.gamma * self.attention(g, tokens)
