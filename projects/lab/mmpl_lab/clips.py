"""The lab's tiny CLIPs: open_clip model configs and the weight files
mmpl's recipe pretrained (``clip/weights/README.md``).

They are given to mmpl by path (``model.clip.arch`` a model config file,
``model.clip.pretrained='mmpl:<weight file>'``), so that nothing is
registered with open_clip until a lab CLIP is built, and a checkpoint's
rebuild config finds them in any process.
"""
import os.path as osp
from typing import Optional

CLIP_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'clip')
#: the world CLIP of the yardstick (ViT 64 px, 4+4 layers)
WORLD_ARCH = 'mmpl-world-vit'
#: the shapes CLIP of the demo and the property tests (ViT 64 px)
SHAPES_ARCH = 'mmpl-shapes-vit'


def model_config(arch: str) -> str:
    """The open_clip model config file of the lab architecture ``arch``."""
    return osp.join(CLIP_DIR, 'model_configs', f'{arch}.json')


def weight_file(arch: str) -> str:
    """The pretrained weight file of the lab architecture ``arch``."""
    return osp.join(CLIP_DIR, 'weights', f'{arch}.pt')


def lab_clip(arch: str, pretrained: bool = True) -> dict:
    """``model.clip`` settings of a lab CLIP (random weights when not
    ``pretrained``)."""
    return dict(arch=model_config(arch),
                pretrained='mmpl:' + weight_file(arch) if pretrained else None)


def register_arch(arch: str) -> str:
    """Make the lab architecture ``arch`` known to open_clip by its name
    (for code that calls open_clip directly); returns the name."""
    from mmpl.clip.builder import resolve_arch
    return resolve_arch(model_config(arch))


def portable(clip: Optional[dict]) -> Optional[dict]:
    """``clip`` with the lab's files named by their architecture instead of
    their paths (``mmpl-world-vit``, ``mmpl:mmpl-world-vit``): the same in
    every clone, for settings compared across runs."""
    if clip is None:
        return None
    out = dict(clip)
    for key, value in clip.items():
        if isinstance(value, str) and value.startswith(
                ('mmpl:' + CLIP_DIR, CLIP_DIR)):
            stem = osp.splitext(osp.basename(value))[0]
            out[key] = ('mmpl:' if value.startswith('mmpl:') else '') + stem
    return out


WORLD_CLIP = lab_clip(WORLD_ARCH)
SHAPES_CLIP = lab_clip(SHAPES_ARCH)
