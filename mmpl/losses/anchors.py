"""Class anchors from an ensemble of hand-crafted templates.

PromptSRC (Khattak et al., ICCV 2023) regularises the prompted text
features towards the frozen CLIP's features of *many* hand-crafted prompts,
not one. The ensemble is CLIP's zero-shot rule (Radford et al. 2021): encode
every template for every class, L2-normalise, average over the templates,
renormalise. ``'openai_imagenet'`` names OpenAI's 80 ImageNet templates as
open_clip ships them (``open_clip.OPENAI_IMAGENET_TEMPLATES``, imported, not
copied); ``'simple_imagenet'`` open_clip's shorter list. Which templates the
DGPrompt paper used is not known to the project (reading: PromptSRC's).
"""
from typing import Callable, List, Sequence, Union

import open_clip
import torch.nn.functional as F
from torch import Tensor

from ..utils.errors import ConfigError

#: named template ensembles (open_clip's tuples of ``str -> str``)
TEMPLATE_ENSEMBLES = {
    'openai_imagenet': open_clip.OPENAI_IMAGENET_TEMPLATES,
    'simple_imagenet': open_clip.SIMPLE_IMAGENET_TEMPLATES,
}
Template = Union[str, Callable[[str], str]]


def resolve_templates(spec: Union[str, Sequence[Template]]
                      ) -> List[Callable[[str], str]]:
    """A named ensemble, or a list of ``'... {} ...'`` strings / callables,
    as callables ``readable class name -> prompt``."""
    if isinstance(spec, str):
        if spec not in TEMPLATE_ENSEMBLES:
            raise ConfigError(
                f'anchor_templates={spec!r} is not a known ensemble '
                f'({", ".join(sorted(TEMPLATE_ENSEMBLES))}); give one of '
                "them or a list of templates like ['a photo of a {}.']")
        return list(TEMPLATE_ENSEMBLES[spec])
    templates = list(spec)
    if not templates:
        raise ConfigError('anchor_templates is an empty list')
    out = []
    for t in templates:
        if callable(t):
            out.append(t)
        elif isinstance(t, str) and '{}' in t:
            out.append(t.format)
        else:
            raise ConfigError(f'anchor template {t!r} is neither a callable '
                              "nor a string with '{}' for the class name")
    return out


def ensemble_texts(templates: Sequence[Callable[[str], str]],
                   readable_names: Sequence[str]) -> List[str]:
    """T*C prompts, template-major: ``templates[t](names[c])`` at t*C + c."""
    return [t(name) for t in templates for name in readable_names]


def ensemble_anchors(features: Tensor, num_templates: int) -> Tensor:
    """(T*C, D) text features (template-major) -> (C, D) unit anchors: the
    renormalised mean over templates of the normalised features."""
    f = F.normalize(features.float(), dim=-1)
    f = f.view(num_templates, -1, f.shape[-1]).mean(0)
    return F.normalize(f, dim=-1)
