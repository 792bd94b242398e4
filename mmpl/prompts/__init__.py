from .base import (BaseFeatureTuner, BaseTextPrompt, BaseVisualPrompt,
                   FrozenImageFeatures, TextPrompts, VisualPrompts)
from .cocoop import CoCoOp
from .coop import CoOp, class_token_layout
from .ctp import CTP
from .dgprompt import DGPrompt
from .ftp import FTP
from .ivlp import IVLP
from .layers import bottleneck_mlp
from .maple import MaPLe
from .tft import TFT
from .tvp import TVP
from .zero_shot import ZeroShotCLIP

__all__ = [
    'BaseTextPrompt', 'BaseVisualPrompt', 'BaseFeatureTuner', 'FTP', 'TVP',
    'FrozenImageFeatures', 'TextPrompts', 'VisualPrompts', 'CoOp', 'CoCoOp',
    'bottleneck_mlp', 'class_token_layout', 'CTP', 'TFT', 'ZeroShotCLIP',
    'DGPrompt', 'IVLP', 'MaPLe'
]
