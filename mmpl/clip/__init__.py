from ..constants import CLIP_MEAN, CLIP_STD, DEFAULT_TEMPLATE
from .adapter import FrozenCLIP
from .builder import build_open_clip, check_arch, register_mmpl_model_configs
from .class_tokens import (ClassTokens, build_class_tokens, class_prompt_texts,
                           context_init_embedding, readable_classname)
from .errors import CLIPBuildError
from .towers import TextTower, VisionTower

register_mmpl_model_configs()

__all__ = [
    'FrozenCLIP', 'build_open_clip', 'check_arch', 'ClassTokens',
    'build_class_tokens', 'class_prompt_texts', 'context_init_embedding',
    'readable_classname', 'CLIPBuildError', 'register_mmpl_model_configs',
    'TextTower', 'VisionTower', 'CLIP_MEAN', 'CLIP_STD', 'DEFAULT_TEMPLATE'
]
