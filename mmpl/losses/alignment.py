"""Alignment loss of task-oriented mutual learning (reconstruction).

Long et al., "Task-Oriented Multi-Modal Mutual Learning for Vision-Language
Models" (ICCV 2023). From the paper (abstract level, DESIGN.md): a
contrastive loss aligns the augmented text features (CTP) and image features
(TFT).

The project's reading (every choice is a constructor option):

* image-to-text: InfoNCE of each image over the class prompts, which is the
  cross-entropy on the classifier's logits (they already use the augmented
  features: cos(h_{b,c}, g_{b,c}) with TFT and CTP) [weight 1];
* text-to-image (optional, [weight 0 = off]): within the batch, the text of
  image b's class y_b is scored against every image b' of the batch with the
  classifier's own pair score ``logits[b', y_b]`` (the class-y_b prompt
  conditioned on image b', the feature of image b' tuned for class y_b), and
  a softmax over the images must pick the images of class y_b
  (``positives='same_label'``) or image b alone (``'diagonal'``, CLIP-style).

Since the image-to-text term equals the classifier's ``loss_cls``, the TOMM
configs do not add this module by default; use it for the text-to-image term
(``image_to_text_weight=0``) or to reweight the two directions.
"""
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..models.classifier import PromptCLIPOutputs
from ..utils.errors import ConfigError

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
class AlignmentLoss(nn.Module):
    """image_to_text_weight * CE(logits, labels)
    + text_to_image_weight * text-to-image InfoNCE within the batch.

    Args:
        image_to_text_weight: weight of the image-to-text term [1.0].
        text_to_image_weight: weight of the text-to-image term [0.0 = off].
        positives: text-to-image positives, 'same_label' [default] or
            'diagonal' (reading).
        loss_name: key in the loss dict ['loss_align'].
    """
    needs_anchors = False
    needs_frozen_image = False

    def __init__(self,
                 image_to_text_weight: float = 1.0,
                 text_to_image_weight: float = 0.0,
                 positives: str = 'same_label',
                 loss_name: str = 'loss_align'):
        super().__init__()
        if positives not in POSITIVES:
            raise ConfigError(f'positives must be one of {POSITIVES}, got '
                              f'{positives!r}')
        self.image_to_text_weight = image_to_text_weight
        self.text_to_image_weight = text_to_image_weight
        self.positives = positives
        self.loss_name = loss_name

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
