"""The embedded benchmark: any method config, run offline on CPU.

A method's real config (e.g. ``configs/coop/coop_vitb16_b2n_eurosat.py``)
keeps its prompt modules, losses, optimizer and schedule shape; this module
swaps in what cannot be downloaded here:

* CLIP: ``mmpl-shapes-vit``, the tiny CLIP pretrained by
  ``tools/misc/pretrain_tiny_clip.py`` on clean generated shapes and shipped
  with mmpl (``pretrained='mmpl:shapes-vit'``);
* data: the *downstream* (shifted) rendering of the same colour x shape
  classes, in the CoOp split layout (``mmpl.datasets.shapes``), read by
  ``CoOpCustomDataset``; base classes cover every colour and shape, new
  classes are unseen combinations;
* input size 64 px instead of 224, milder random crops, no dataloader
  workers, a short schedule.
"""
from typing import Optional

from ..datasets.shapes import IMAGE_DIR, SPLIT_FILE, TEMPLATE
from .config_tools import (iter_dataset_cfgs, replace_clip, replace_readers,
                           set_image_size, set_loader_options)

SHAPES_CLIP = dict(arch='mmpl-shapes-vit', pretrained='mmpl:shapes-vit')
IMAGE_SIZE = 64
#: RandomResizedCrop area range: CLIP's 0.08-1 would often crop the small,
#: off-centre object out of a 64 px image
CROP_AREA = (0.5, 1.0)


def shapes_reader(data_root: str) -> dict:
    """Reader config of the downstream shapes dataset at ``data_root``."""
    return dict(type='CoOpCustomDataset', data_root=data_root,
                split_file=SPLIT_FILE, image_dir=IMAGE_DIR,
                template=TEMPLATE, slug='shapes')


def to_embedded_benchmark(cfg,
                          data_root: str,
                          max_epochs: Optional[int] = None,
                          batch_size: Optional[int] = None,
                          lr: Optional[float] = None):
    """Rewrite a method config (in place) to run on the embedded benchmark.

    Args:
        cfg: a loaded mmengine Config of any mmpl method.
        data_root: folder written by ``write_downstream_dataset``.
        max_epochs, batch_size, lr: schedule overrides (None keeps the
            method's own value).
    """
    replace_clip(cfg, SHAPES_CLIP)
    replace_readers(cfg, lambda node: dict(
        shapes_reader(data_root), split=node.get('split'),
        pipeline=node.get('pipeline', []), serialize_data=False))
    set_image_size(cfg, IMAGE_SIZE)
    for node in iter_dataset_cfgs(cfg):
        if node.get('type') == 'RandomResizedCrop':
            node['crop_ratio_range'] = CROP_AREA
    set_loader_options(cfg, num_workers=0)
    if batch_size is not None:
        cfg.train_dataloader.batch_size = batch_size
    if max_epochs is not None:
        cfg.train_cfg.max_epochs = max_epochs
    if lr is not None:
        cfg.optim_wrapper.optimizer.lr = lr
    return cfg
