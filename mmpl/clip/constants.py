"""CLIP's constants: image normalisation and the default hand-crafted
prompt template."""
from typing import List

#: OpenAI CLIP's image normalisation, on the 0-255 scale of mmpretrain's
#: ``ClsDataPreprocessor`` (RGB order).
CLIP_MEAN: List[float] = [0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255]
CLIP_STD: List[float] = [0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255]

#: The template of the class anchors when a dataset has no dedicated one
#: (see :func:`~mmpl.clip.class_prompt_texts`).
DEFAULT_TEMPLATE: str = 'a photo of a {}.'
