"""Run any config offline: a tiny random CLIP and miniature data.

The rewrite is a set of ``--cfg-options`` (dotted keys), so that the same
change applies in-process (``cfg.merge_from_dict``) and on a
``tools/train.py`` / ``tools/test.py`` command line
(``tools/misc/smoke.py``, ``tools/run_benchmark.py --smoke``).
"""
import os.path as osp
from typing import Any, Dict, Optional

from ..utils.config_tools import (image_size_options, iter_dataset_paths,
                                  loader_options)
from ..utils.errors import ConfigError
from .miniature import MINIATURE_WRITERS, MiniatureSpec, write_miniature

#: the tiny test CLIP's open_clip model config (width 64, 2+2 layers),
#: given by path: nothing is registered with open_clip until it is built
TINY_ARCH = osp.join(osp.dirname(osp.abspath(__file__)),
                      'mmpl-tiny-vit.json')
TINY_CLIP = dict(arch=TINY_ARCH, pretrained=None)
#: the tiny CLIP's input size (its model config's image_size)
TINY_IMAGE_SIZE = 224


def register_tiny_arch() -> str:
    """Make the tiny test CLIP known to open_clip by its name,
    ``mmpl-tiny-vit`` (for tests that name it); returns the name."""
    from ..clip.builder import resolve_arch
    return resolve_arch(TINY_ARCH)


def offline_options(cfg, data_dir: str, batch_size: int = 4,
                    roots: Optional[Dict[str, str]] = None
                    ) -> Dict[str, Any]:
    """``--cfg-options`` that run ``cfg`` offline in seconds.

    Writes a miniature of every dataset reader of ``cfg`` (in the reader's
    own on-disk layout) under ``data_dir`` and returns the options pointing
    the readers at them, swapping in the tiny random CLIP, capping batch
    sizes at ``batch_size``, turning dataloader workers off, capping
    few-shot sampling at the miniature's images per class, resizing the
    pipelines to the tiny CLIP's input size and training one epoch.
    ``roots`` (dataset type -> data root): miniatures already written,
    reused and added to across calls.
    """
    options: Dict[str, Any] = {f'model.clip.{k}': v
                               for k, v in TINY_CLIP.items()}
    roots = {} if roots is None else roots
    for key, node in list(iter_dataset_paths(cfg)):
        if 'data_root' not in node:
            continue
        kind = node['type']
        if kind not in MINIATURE_WRITERS:
            raise ConfigError(f'no miniature layout for dataset type {kind!r}'
                              f' (known: {sorted(MINIATURE_WRITERS)})')
        if kind not in roots:
            roots[kind] = write_miniature(kind, data_dir)
        options[f'{key}.data_root'] = roots[kind]
        # serialize_data=False skips a gc.collect() per dataset
        options[f'{key}.serialize_data'] = False
    # K shots of a miniature class are all its training images (no
    # "fewer than num_shots images" warning on every offline run)
    shots = MiniatureSpec().images_per_class[0]
    for key, node in iter_dataset_paths(cfg):
        if node.get('type') == 'FewShotDataset' and \
                node.get('num_shots', 0) > shots:
            options[f'{key}.num_shots'] = shots
    options.update(loader_options(cfg, max_batch_size=batch_size,
                                  num_workers=0))
    options.update(image_size_options(cfg, TINY_IMAGE_SIZE))
    if cfg.get('train_cfg') and cfg.train_cfg.get('by_epoch', True):
        options['train_cfg.max_epochs'] = 1
    options['default_hooks.logger.interval'] = 1
    options['default_hooks.checkpoint.interval'] = 1
    return options


def make_offline(cfg, data_dir: str, batch_size: int = 4):
    """Apply :func:`offline_options` to ``cfg`` in place; returns it."""
    cfg.merge_from_dict(offline_options(cfg, osp.abspath(data_dir),
                                        batch_size))
    return cfg
