"""Extra losses (retention, alignment), registered into MODELS."""
from .alignment import AlignmentLoss, text_to_image_loss  # noqa: F401
from .base import BaseExtraLoss  # noqa: F401
from .retention import (ImageRetentionLoss, LogitRetentionLoss,  # noqa: F401
                        TextRetentionLoss)
