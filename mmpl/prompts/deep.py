"""Shared pieces of deep (multi-layer) prompt modules: MaPLe, DGPrompt.

Depth ``J`` counts the layers that carry prompts: layer 0 (the input, shallow
prompts) and layers ``1 .. J-1`` (deep prompts, which replace the previous
layer's prompt slots, see :mod:`mmpl.clip.adapter`).
"""
import torch
from mmengine.logging import print_log
from torch import nn

from ..utils.errors import ConfigError

DEPTH_OVERFLOW = ('clip', 'error')


def resolve_depth(clip, depth: int, need_vision: bool,
                  overflow: str = 'clip', owner: str = 'prompts') -> int:
    """Check the prompt depth ``J`` against the towers' layer counts.

    Args:
        clip: the frozen CLIP.
        depth: requested ``J`` (>= 1).
        need_vision: the module also prompts the image tower.
        overflow: what to do when ``J`` exceeds the layer count: 'clip' to
            the layer count (with a warning) or 'error'.
        owner: the module's name, for messages.

    Returns:
        the depth to use.
    """
    if overflow not in DEPTH_OVERFLOW:
        raise ConfigError(f'depth_overflow must be one of {DEPTH_OVERFLOW}, '
                          f'got {overflow!r}')
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ConfigError(f'{owner}: depth must be an integer >= 1, got '
                          f'{depth!r}')
    layers = clip.text_layers
    where = f'the {layers}-layer text encoder'
    if need_vision:
        if not clip.is_vit:
            raise ConfigError(f'{owner} prompts the image tower and needs a '
                              f'ViT; {clip.arch} has none')
        if clip.vision_layers < layers:
            layers = clip.vision_layers
            where = f'the {layers}-layer image encoder'
    if depth <= layers:
        return depth
    message = (f'{owner}: prompt depth {depth} exceeds {where} of '
               f'{clip.arch}')
    if overflow == 'error':
        raise ConfigError(message + f'; use depth <= {layers}')
    print_log(message + f'; using depth {layers}', logger='current',
              level=30)
    return layers


def layer_prompts(num_layers: int, n_tokens: int, width: int, device,
                  std: float = 0.02) -> nn.ParameterList:
    """``num_layers`` independent (n_tokens, width) prompts, N(0, std)."""
    return nn.ParameterList([
        nn.Parameter(torch.empty(n_tokens, width, device=device).normal_(
            std=std)) for _ in range(num_layers)
    ])
