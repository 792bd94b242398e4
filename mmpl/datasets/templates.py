"""Hand-crafted prompt templates of the CoOp benchmark, keyed by dataset slug.

From the CoOp benchmark protocol (CoOp / CoCoOp ``CUSTOM_TEMPLATES``): one
template per dataset, used for zero-shot CLIP, prompt initialisation and the
frozen text anchors. ``{}`` is replaced by the class name (underscores become
spaces when prompts are built; the datasets keep the names as written in the
split files). The ImageNet variants (V2, Sketch, A, R) use the ImageNet
template, as in the domain-generalisation protocol.
"""
from typing import Dict

# DEFAULT_TEMPLATE: used when a dataset has no dedicated one (re-exported)
from ..constants import DEFAULT_TEMPLATE

_IMAGENET_TEMPLATE: str = 'a photo of a {}.'

#: Per-dataset templates (CoOp benchmark protocol), keyed by dataset slug.
DATASET_TEMPLATES: Dict[str, str] = {
    'imagenet': _IMAGENET_TEMPLATE,
    'caltech101': 'a photo of a {}.',
    'oxford_pets': 'a photo of a {}, a type of pet.',
    'stanford_cars': 'a photo of a {}.',
    'flowers102': 'a photo of a {}, a type of flower.',
    'food101': 'a photo of {}, a type of food.',
    'fgvc_aircraft': 'a photo of a {}, a type of aircraft.',
    'sun397': 'a photo of a {}.',
    'dtd': '{} texture.',
    'eurosat': 'a centered satellite photo of {}.',
    'ucf101': 'a photo of a person doing {}.',
    # domain-generalisation targets share the ImageNet template
    'imagenetv2': _IMAGENET_TEMPLATE,
    'imagenet_sketch': _IMAGENET_TEMPLATE,
    'imagenet_a': _IMAGENET_TEMPLATE,
    'imagenet_r': _IMAGENET_TEMPLATE,
}


def get_template(slug: str) -> str:
    """The protocol template of ``slug`` (``DEFAULT_TEMPLATE`` if unknown)."""
    return DATASET_TEMPLATES.get(slug, DEFAULT_TEMPLATE)
