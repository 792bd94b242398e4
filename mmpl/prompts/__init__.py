from .base import (BaseFeatureTuner, BaseTextPrompt, BaseVisualPrompt,
                   FrozenImageFeatures, TextPrompts, VisualPrompts)
from .cocoop import CoCoOp, bottleneck_mlp
from .coop import CoOp, class_token_layout
from .ctp import CTP
from .ftp import FTP
from .dgprompt import DGPrompt  # noqa: F401
from .maple import MaPLe  # noqa: F401
from .tft import TFT
from .tvp import TVP
from .zero_shot import ZeroShotCLIP

# MaPLe's declaration: it belongs in maple.py's class body (written here while
# issue 14 rewrites that file).
MaPLe.produces_visual_prompts = True

__all__ = [
    'BaseTextPrompt', 'BaseVisualPrompt', 'BaseFeatureTuner', 'FTP', 'TVP',
    'FrozenImageFeatures', 'TextPrompts', 'VisualPrompts', 'CoOp', 'CoCoOp',
    'bottleneck_mlp', 'class_token_layout', 'CTP', 'TFT', 'ZeroShotCLIP'
]
