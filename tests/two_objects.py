"""Images of the project's shape world for the property tests of CTP, TFT,
FTP and TVP (tests/test_properties_*.py) on the lab's pretrained
tiny CLIP ``mmpl-shapes-vit`` (64 px, 4x4 patch grid)."""
import numpy as np
import torch

from mmpl.clip import CLIP_MEAN, CLIP_STD
from mmpl_lab.clips import SHAPES_CLIP
from mmpl_lab.shapes import class_names, render, render_pair

ARCH = SHAPES_CLIP['arch']
PRETRAINED = SHAPES_CLIP['pretrained']
NAMES = class_names()
#: 4x4 grid, row-major: the patches of the left half (columns 0, 1)
LEFT = torch.arange(16) % 4 < 2


def shapes_clip():
    from mmpl.clip import FrozenCLIP
    return FrozenCLIP(ARCH, pretrained=PRETRAINED)


def to_input(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) CLIP-normalised."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    return (x - mean) / std


def two_object_batch(num: int = 40, seed: int = 0):
    """``num`` two-object images: class ``pairs[i, 0]`` centred at x=0.27,
    class ``pairs[i, 1]`` (another colour and shape) at x=0.73.

    Returns:
        (num, 3, 64, 64) inputs and the (num, 2) class indices into NAMES.
    """
    rng = np.random.default_rng(seed)
    pairs = []
    while len(pairs) < num:
        a, b = rng.choice(len(NAMES), 2, replace=False)
        ca, sa = NAMES[a].split(' ')
        cb, sb = NAMES[b].split(' ')
        if ca != cb and sa != sb:
            pairs.append((a, b))
    images = np.stack([np.asarray(render_pair(NAMES[a], NAMES[b], rng))
                       for a, b in pairs])
    return to_input(images), torch.tensor(pairs)


def single_object_batch(labels, seed: int = 1) -> torch.Tensor:
    """(N, 3, 64, 64) clean single-object images of classes ``labels``."""
    rng = np.random.default_rng(seed)
    return to_input(np.stack([np.asarray(render(NAMES[int(c)], rng))
                              for c in labels]))


def anchors(clip, names=NAMES) -> torch.Tensor:
    """(C, D) frozen 'a photo of a {}.' features."""
    with torch.no_grad():
        return clip.encode_token_ids(clip.tokenize(
            [f'a photo of a {n}.' for n in names])).float()
