"""Alignment loss of task-oriented mutual learning (reconstruction, second
reading).

Long et al., "Task-Oriented Multi-Modal Mutual Learning for Vision-Language
Models" (ICCV 2023). The paper (abstract level): a contrastive loss aligns
the augmented text features (CTP) and image features (TFT).

The project's reading (DESIGN.md "Method specifications"): the symmetric
contrastive (InfoNCE) loss in the batch,

* image-to-text: each image over the class prompts, i.e. the cross-entropy
  on the classifier's logits (they already use the augmented features:
  cos(h_{b,c}, g_{b,c}) with TFT and CTP) [weight 1];
* text-to-image: the text of image b's class y_b is scored against every
  image b' of the batch with the classifier's own pair score
  ``logits[b', y_b]`` (the class-y_b prompt conditioned on image b', the
  feature of image b' tuned for class y_b), and a softmax over the images
  must pick the images of class y_b (``positives='same_label'``) or image b
  alone (``'diagonal'``, CLIP-style) [weight 1; 0 = the first, CE-only
  reading, kept for ablation]. The texts of images of the same class score
  the batch identically, so the two positives give the same gradient (the
  losses differ by a constant, the targets' entropy).

The image-to-text term equals the classifier's ``loss_cls``, so the TOMM
configs add this module with ``image_to_text_weight=0`` (the symmetric loss
is then ``loss_cls + loss_align``).
"""
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor

from ..structures import Needs, PromptCLIPOutputs
from ..utils.checks import check_choice
from .base import BaseExtraLoss

POSITIVES = ('same_label', 'diagonal')


def text_to_image_loss(logits: Tensor, labels: Tensor,
                       positives: str = 'same_label') -> Tensor:
    """Text-to-image InfoNCE within a batch.

    Args:
        logits: (B, C) scaled image-text scores.
        labels: (B,) class of each image.
        positives: 'same_label' (soft target, uniform over the images of the
            same class) or 'diagonal' (image b only).

    Returns:
        scalar, the mean over the B texts (one per image's class).
    """
    scores = logits[:, labels].t()  # (B texts, B images): logits[b', y_b]
    if positives == 'diagonal':
        target = torch.arange(labels.shape[0], device=labels.device)
    else:
        same = (labels.unsqueeze(0) == labels.unsqueeze(1)).float()
        target = same / same.sum(1, keepdim=True)
    return F.cross_entropy(scores, target)


@MODELS.register_module()
class AlignmentLoss(BaseExtraLoss):
    """image_to_text_weight * CE(logits, labels)
    + text_to_image_weight * text-to-image InfoNCE within the batch.

    Args:
        image_to_text_weight: weight of the image-to-text term [1.0].
        text_to_image_weight: weight of the text-to-image term [1.0; 0 =
            the CE-only first reading].
        positives: text-to-image positives, 'same_label' [default] or
            'diagonal' (reading).
        loss_name: key in the loss dict ['loss_align'].
    """
    needs = Needs()

    def __init__(self,
                 image_to_text_weight: float = 1.0,
                 text_to_image_weight: float = 1.0,
                 positives: str = 'same_label',
                 loss_name: str = 'loss_align'):
        super().__init__(loss_name)
        check_choice('positives', positives, POSITIVES)
        self.image_to_text_weight = image_to_text_weight
        self.text_to_image_weight = text_to_image_weight
        self.positives = positives

    def forward(self, outputs: PromptCLIPOutputs, labels: Tensor) -> Tensor:
        logits = outputs.logits  # (B, C)
        loss = logits.new_zeros(())
        if self.image_to_text_weight:
            loss = loss + self.image_to_text_weight * F.cross_entropy(
                logits, labels)
        if self.text_to_image_weight:
            loss = loss + self.text_to_image_weight * text_to_image_loss(
                logits, labels, self.positives)
        return loss
