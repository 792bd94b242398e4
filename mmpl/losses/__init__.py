"""Extra losses (retention, alignment), registered into MODELS."""
from .retention import (ImageRetentionLoss, LogitRetentionLoss,  # noqa: F401
                        TextRetentionLoss)
