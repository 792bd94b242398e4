from ..constants import CLIP_MEAN, CLIP_STD, DEFAULT_TEMPLATE
from .adapter import FrozenCLIP
from .builder import build_open_clip, check_arch
from .class_tokens import (ClassTokens, build_class_tokens, class_prompt_texts,
                           context_init_embedding, readable_classname)
from .errors import CLIPBuildError
from .towers import TextTower, VisionTower

__all__ = [
    'FrozenCLIP', 'build_open_clip', 'check_arch', 'ClassTokens',
    'build_class_tokens', 'class_prompt_texts', 'context_init_embedding',
    'readable_classname', 'CLIPBuildError',
    'TextTower', 'VisionTower', 'CLIP_MEAN', 'CLIP_STD', 'DEFAULT_TEMPLATE'
]
