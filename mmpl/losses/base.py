"""The interface of the classifier's extra losses."""
from abc import ABCMeta, abstractmethod

from torch import Tensor, nn

from ..structures import Needs, PromptCLIPOutputs


class BaseExtraLoss(nn.Module, metaclass=ABCMeta):
    """Base class of the losses in ``extra_losses`` of
    :class:`~mmpl.models.PromptCLIPClassifier`.

    ``forward(outputs, labels)`` returns a scalar from the forward's
    :class:`~mmpl.structures.PromptCLIPOutputs` and the (B,) labels; the
    classifier adds it to the training losses under ``loss_name``.

    Args:
        loss_name: key of the loss in the loss dict; mmengine adds the keys
            that contain 'loss' to the total loss.

    Attributes:
        needs: what forward reads from the outputs besides the logits
            (abstract: every loss declares it, a class attribute or a
            property). ``anchors``: ``outputs.anchors``, the (C, D) class
            anchors ``t0``; ``frozen_image``: ``outputs.frozen_image``, the
            prompt-free image pass ``f0``. The classifier computes them in
            training, and keeps the anchors in evaluation.
    """

    def __init__(self, loss_name: str):
        super().__init__()
        self.loss_name = loss_name

    @property
    @abstractmethod
    def needs(self) -> Needs:
        """What forward reads from the outputs (see the class docs)."""

    def forward(self, outputs: PromptCLIPOutputs, labels: Tensor) -> Tensor:
        raise NotImplementedError
