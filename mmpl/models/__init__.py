from .classifier import (CLIP_MEAN, CLIP_STD, PromptCLIPClassifier,
                         PromptCLIPOutputs, cosine_logits)

__all__ = ['PromptCLIPClassifier', 'PromptCLIPOutputs', 'cosine_logits',
           'CLIP_MEAN', 'CLIP_STD']
