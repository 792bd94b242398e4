"""The frozen data of a class set: its class prompts' token layout and its
class anchors ``t0``, the frozen CLIP's text features of hand-crafted
prompts, from one template or an ensemble of templates.

The classifier keeps one :class:`ClassSet` per set of class names (train,
base, new ...); the template comes from the dataset
(``metainfo['template']``, :mod:`mmpl.datasets.templates`) or the
classifier's ``template``.

PromptSRC (Khattak et al., ICCV 2023) regularises the prompted text
features towards the frozen CLIP's features of *many* hand-crafted prompts,
not one. The ensemble is CLIP's zero-shot rule (Radford et al. 2021): encode
every template for every class, L2-normalise, average over the templates,
renormalise. ``'openai_imagenet'`` names OpenAI's 80 ImageNet templates as
open_clip ships them (``open_clip.OPENAI_IMAGENET_TEMPLATES``, imported, not
copied); ``'simple_imagenet'`` open_clip's shorter list;
``'promptsrc_imagenet'`` the 60 of them the official PromptSRC code uses for
every dataset (``trainers/imagenet_templates.py`` ``IMAGENET_TEMPLATES``, in
its order). The official PromptSRC code also averages differently: it
normalises the mean of the *unnormalised* template features
(``average='unnormalised'``; ``promptsrc.py:128``), not CLIP's rule. Which
templates the DGPrompt paper used is not known to the project (reading:
PromptSRC's).
"""
from typing import Callable, List, Optional, Sequence, Union

import open_clip
import torch
import torch.nn.functional as F
from torch import Tensor

from ..clip import (ClassTokens, build_class_tokens, class_prompt_texts,
                    readable_classname)
from ..utils.errors import ConfigError

#: the official PromptSRC code's 60 templates (a subset of OpenAI's 80, in
#: the official order), used for every dataset
PROMPTSRC_IMAGENET_TEMPLATES = (
    'a photo of a {}.', 'a bad photo of a {}.', 'a photo of many {}.',
    'a sculpture of a {}.', 'a photo of the hard to see {}.',
    'a low resolution photo of the {}.', 'a rendering of a {}.',
    'graffiti of a {}.', 'a bad photo of the {}.',
    'a cropped photo of the {}.', 'a tattoo of a {}.', 'the embroidered {}.',
    'a photo of a hard to see {}.', 'a bright photo of a {}.',
    'a photo of a clean {}.', 'a photo of a dirty {}.',
    'a dark photo of the {}.', 'a drawing of a {}.', 'a photo of my {}.',
    'the plastic {}.', 'a photo of the cool {}.', 'a close-up photo of a {}.',
    'a black and white photo of the {}.', 'a painting of the {}.',
    'a painting of a {}.', 'a pixelated photo of the {}.',
    'a sculpture of the {}.', 'a bright photo of the {}.',
    'a cropped photo of a {}.', 'a plastic {}.', 'a photo of the dirty {}.',
    'a jpeg corrupted photo of a {}.', 'a blurry photo of the {}.',
    'a photo of the {}.', 'a good photo of the {}.', 'a rendering of the {}.',
    'a {} in a video game.', 'a photo of one {}.', 'a doodle of a {}.',
    'a close-up photo of the {}.', 'the origami {}.',
    'the {} in a video game.', 'a sketch of a {}.', 'a doodle of the {}.',
    'a origami {}.', 'a low resolution photo of a {}.', 'the toy {}.',
    'a rendition of the {}.', 'a photo of the clean {}.',
    'a photo of a large {}.', 'a rendition of a {}.', 'a photo of a nice {}.',
    'a photo of a weird {}.', 'a blurry photo of a {}.', 'a cartoon {}.',
    'art of a {}.', 'a sketch of the {}.', 'a embroidered {}.',
    'a pixelated photo of a {}.', 'itap of the {}.',
)
#: named template ensembles: open_clip's tuples of ``str -> str`` callables,
#: or '... {} ...' strings
TEMPLATE_ENSEMBLES = {
    'openai_imagenet': open_clip.OPENAI_IMAGENET_TEMPLATES,
    'simple_imagenet': open_clip.SIMPLE_IMAGENET_TEMPLATES,
    'promptsrc_imagenet': PROMPTSRC_IMAGENET_TEMPLATES,
}
#: how the template features of a class are averaged (:func:`ensemble_anchors`)
ANCHOR_AVERAGES = ('normalised', 'unnormalised')
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
        spec = TEMPLATE_ENSEMBLES[spec]
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


def ensemble_anchors(features: Tensor, num_templates: int,
                     average: str = 'normalised') -> Tensor:
    """(T*C, D) text features (template-major) -> (C, D) unit anchors.

    ``average``: 'normalised' = CLIP's zero-shot rule, the renormalised mean
    over templates of the normalised features; 'unnormalised' = the official
    PromptSRC code's, the normalised mean of the raw features.
    """
    f = features.float()
    if average == 'normalised':
        f = F.normalize(f, dim=-1)
    f = f.view(num_templates, -1, f.shape[-1]).mean(0)
    return F.normalize(f, dim=-1)


class ClassSet:
    """Frozen data of one class set: the token layout of its class prompts
    and the texts of its anchors (the anchors themselves are encoded on
    first use, :meth:`encode_anchors`).

    Args:
        tokens: the class prompts' token layout
            (:func:`~mmpl.clip.build_class_tokens`).
        anchor_texts: C hand-crafted prompts, or T*C for an ensemble of T
            templates (template-major).
        num_templates: T for an ensemble, None for one template.
    """

    def __init__(self, tokens: ClassTokens, anchor_texts: List[str],
                 num_templates: Optional[int] = None):
        self.tokens = tokens
        self.anchor_texts = anchor_texts
        self.num_templates = num_templates
        self.anchors: Optional[Tensor] = None  # (C, D)

    @classmethod
    def build(cls, clip, classnames: Sequence[str], n_ctx: int,
              context_phrase: Optional[str], template: str,
              ensemble: Optional[Sequence[Callable[[str], str]]] = None
              ) -> 'ClassSet':
        """The class set of ``classnames`` for a text prompt module with
        ``n_ctx`` context slots and its ``context_phrase``; anchors of
        ``template``, or of the templates of ``ensemble``
        (:func:`resolve_templates`) when given."""
        tokens = build_class_tokens(clip, classnames, n_ctx, context_phrase)
        if ensemble is None:
            return cls(tokens, class_prompt_texts(template, classnames))
        texts = ensemble_texts(ensemble, [readable_classname(n)
                                          for n in classnames])
        return cls(tokens, texts, len(ensemble))

    def encode_anchors(self, clip, average: str = 'normalised',
                       chunk_size: Optional[int] = None) -> Tensor:
        """(C, D) anchors: the frozen text features of the anchor texts
        (of an ensemble: their unit mean over the templates, ``average``
        as :func:`ensemble_anchors`), encoded once and kept."""
        if self.anchors is None:
            with torch.no_grad():
                ids = clip.tokenize(self.anchor_texts)
                anchors = clip.encode_token_ids(
                    ids, chunk_size=chunk_size).float()
            if self.num_templates is not None:
                anchors = ensemble_anchors(anchors, self.num_templates,
                                           average)
            self.anchors = anchors
        return self.anchors
