from ..clip import CLIP_MEAN, CLIP_STD
from ..structures import PromptCLIPOutputs, cosine_logits
from .class_set import ClassSet
from .classifier import PromptCLIPClassifier

__all__ = ['PromptCLIPClassifier', 'PromptCLIPOutputs', 'cosine_logits',
           'CLIP_MEAN', 'CLIP_STD', 'ClassSet']
