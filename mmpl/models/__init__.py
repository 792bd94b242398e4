from ..clip import CLIP_MEAN, CLIP_STD
from ..structures import PromptCLIPOutputs, cosine_logits
from .classifier import PromptCLIPClassifier

__all__ = ['PromptCLIPClassifier', 'PromptCLIPOutputs', 'cosine_logits',
           'CLIP_MEAN', 'CLIP_STD']
