"""Retention losses: keep prompted features close to frozen CLIP's.

Each loss is a separate registered module usable with any method in mmpl
(``extra_losses`` of :class:`~mmpl.models.PromptCLIPClassifier`); it reads
:class:`~mmpl.structures.PromptCLIPOutputs` and declares what it needs
(``needs``, a :class:`~mmpl.structures.Needs`: ``anchors``, the (C, D)
frozen hand-crafted text features ``t0``, cached by the classifier once per
class set; ``frozen_image``: the prompt-free image features ``f0``). Every
term is exactly zero when the prompted features equal the frozen ones.

From PromptSRC (Khattak et al., ICCV 2023, "self-regulating constraints"),
terms, weights and KL direction as in its code:

* :class:`TextRetentionLoss`: lambda_t * mean_{b,c,d} |g^_{b,c} - t0^_c|,
  the L1 of the L2-normalised features, per class (and per image when the
  text features are (B, C, D)) [lambda_t 25]; KgCoOp's 1 - cos x8 is the
  'cosine' option.
* :class:`ImageRetentionLoss`: lambda_v * mean |f^_b - f0^_b| [10].
* :class:`LogitRetentionLoss`: lambda * KL(p_zs || p) with p_zs =
  softmax(scale * cos(f0, t0)) the frozen zero-shot prediction (the target)
  and p = softmax(logits) [1], summed and divided by B*C.

The anchors ``t0`` come from one template or an ensemble
(:mod:`mmpl.models.class_set`, the classifier's ``anchor_templates``).
Gaussian prompt aggregation over epochs is
:class:`~mmpl.engine.hooks.GaussianPromptAggregationHook`.
The DGPrompt paper (Neural Networks 2025) says only that "a retention
module restrains prompt tuning"; that it is PromptSRC's three terms with
PromptSRC's weights is the project's reading.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor

from ..structures import Needs, PromptCLIPOutputs, cosine_logits
from ..utils.checks import check_choice
from .base import BaseExtraLoss

TEXT_DISTANCES = ('l1', 'cosine')
KL_REDUCTIONS = ('numel', 'batchmean')


def _required(value: Optional[Tensor], what: str, owner: str) -> Tensor:
    if value is None:
        raise ValueError(f'{owner} needs {what}, but the classifier did not '
                         'compute it (losses run in training mode, where '
                         "the classifier reads each loss's needs)")
    return value


class _WeightedLoss(BaseExtraLoss):
    """A named loss term with a weight (``loss_name`` keys the loss dict;
    ``needs``: what it reads from the outputs besides the logits)."""

    def __init__(self, loss_weight: float, loss_name: str):
        super().__init__(loss_name)
        self.loss_weight = loss_weight


def feature_distance(x: Tensor, y: Tensor, distance: str = 'l1') -> Tensor:
    """Mean distance between L2-normalised features (broadcast over leading
    dims): 'l1' is the mean absolute difference (PromptSRC), 'cosine' is
    1 - cos written as ||x^ - y^||^2 / 2, which is exactly 0 for x == y."""
    x = F.normalize(x.float(), dim=-1)
    y = F.normalize(y.float(), dim=-1)
    diff = x - y
    if distance == 'l1':
        return diff.abs().mean()
    return 0.5 * diff.pow(2).sum(-1).mean()


@MODELS.register_module()
class TextRetentionLoss(_WeightedLoss):
    """lambda_t * d(g_c, t0_c), averaged over classes (and images when the
    text features are image-conditioned, (B, C, D)).

    Args:
        loss_weight: lambda_t [25, PromptSRC; KgCoOp uses 8 with 'cosine'].
        distance: 'l1' [default] or 'cosine' (1 - cos).
        loss_name: key in the loss dict.
    """
    needs = Needs(anchors=True)

    def __init__(self, loss_weight: float = 25.0, distance: str = 'l1',
                 loss_name: str = 'loss_text_retention'):
        super().__init__(loss_weight, loss_name)
        check_choice('distance', distance, TEXT_DISTANCES)
        self.distance = distance

    def forward(self, outputs: PromptCLIPOutputs, labels: Tensor) -> Tensor:
        t0 = _required(outputs.anchors, 'the class anchors', 'TextRetention')
        g = outputs.text_features  # (1|B, C, D)
        return self.loss_weight * feature_distance(g, t0.unsqueeze(0),
                                                   self.distance)


@MODELS.register_module()
class ImageRetentionLoss(_WeightedLoss):
    """lambda_v * L1(f, f0) on normalised features; per-class image features
    (B, C, D) are compared with f0 of their image.

    Args:
        loss_weight: lambda_v [10, PromptSRC].
        loss_name: key in the loss dict.
    """
    needs = Needs(frozen_image=True)

    def __init__(self, loss_weight: float = 10.0,
                 loss_name: str = 'loss_image_retention'):
        super().__init__(loss_weight, loss_name)

    def forward(self, outputs: PromptCLIPOutputs, labels: Tensor) -> Tensor:
        frozen = _required(outputs.frozen_image, 'the frozen image pass',
                           'ImageRetention')
        f, f0 = outputs.image_features, frozen.global_feature  # (B[,C],D)
        if f.dim() == 3:
            f0 = f0.unsqueeze(1)
        return self.loss_weight * feature_distance(f, f0, 'l1')


@MODELS.register_module()
class LogitRetentionLoss(_WeightedLoss):
    """lambda * T^2 * KL(softmax(z0 / T) || softmax(z / T)), with zero-shot
    logits z0 = scale * cos(f0, t0).

    Args:
        loss_weight: lambda [1, PromptSRC].
        temperature: T [1].
        reduction: 'numel' (sum / (B*C), PromptSRC's code [default]) or
            'batchmean' (sum / B, the KL per image).
        loss_name: key in the loss dict.
    """
    needs = Needs(frozen_image=True, anchors=True)

    def __init__(self, loss_weight: float = 1.0, temperature: float = 1.0,
                 reduction: str = 'numel',
                 loss_name: str = 'loss_logit_retention'):
        super().__init__(loss_weight, loss_name)
        check_choice('reduction', reduction, KL_REDUCTIONS)
        self.temperature = temperature
        self.reduction = reduction

    def forward(self, outputs: PromptCLIPOutputs, labels: Tensor) -> Tensor:
        t0 = _required(outputs.anchors, 'the class anchors', 'LogitRetention')
        frozen = _required(outputs.frozen_image, 'the frozen image pass',
                           'LogitRetention')
        logits = outputs.logits  # (B, C)
        with torch.no_grad():
            zero_shot = cosine_logits(frozen.global_feature, t0.unsqueeze(0),
                                      outputs.logit_scale)
        temp = self.temperature
        kl = F.kl_div(F.log_softmax(logits / temp, dim=1),
                      F.log_softmax(zero_shot / temp, dim=1),
                      reduction='sum', log_target=True) * temp * temp
        norm = logits.numel() if self.reduction == 'numel' else logits.shape[0]
        return self.loss_weight * kl / norm
