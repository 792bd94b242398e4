"""Names shared across mmpl's layers, in one leaf module (it imports
nothing of mmpl, so that importing :mod:`mmpl.datasets` does not import
open_clip): CLIP's image normalisation, the default hand-crafted prompt
template, and the metric keys of the base and new splits."""
from typing import List

#: OpenAI CLIP's image normalisation, on the 0-255 scale of mmpretrain's
#: ``ClsDataPreprocessor`` (RGB order).
CLIP_MEAN: List[float] = [0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255]
CLIP_STD: List[float] = [0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255]

#: The template of the class anchors when a dataset has no dedicated one
#: (see :func:`~mmpl.clip.class_prompt_texts`).
DEFAULT_TEMPLATE: str = 'a photo of a {}.'

#: the metric keys of base-to-new evaluation (splits ``base`` and ``new``)
BASE_KEY: str = 'base/accuracy/top1'
NEW_KEY: str = 'new/accuracy/top1'
