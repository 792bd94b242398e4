"""Helpers of the loops and hooks: the model behind a wrapper, its class
names from a dataset, a flag over processes, what a run is, and the names
of evaluated splits."""
import os
from typing import Optional

import torch
from mmengine.dist import all_reduce, is_distributed
from mmengine.model import is_model_wrapper

from ..utils.errors import DataError

#: the label of an evaluation without named splits (folders, keys)
UNNAMED_SPLIT = 'test'


def unwrap_model(model):
    """The model inside a DDP / FSDP wrapper (the model itself if none)."""
    return model.module if is_model_wrapper(model) else model


def set_model_classes(model, dataset) -> None:
    """Give the model the dataset's class names (and template)."""
    meta = getattr(dataset, 'metainfo', None) or {}
    classes = meta.get('classes')
    if not classes:
        raise DataError(
            f'{type(dataset).__name__} has no metainfo["classes"]; prompt '
            'learning needs the class names of every evaluated dataset.')
    unwrap_model(model).set_classes(list(classes), meta.get('template'))


def split_label(name: Optional[str]) -> str:
    """The folder / key of a split: its name, ``'test'`` for an unnamed
    one."""
    return name or UNNAMED_SPLIT


def any_process(flag: bool) -> bool:
    """Whether ``flag`` is true in any process (the flag itself when not
    distributed). Every process must call it at the same point."""
    if not is_distributed():
        return flag
    value = torch.tensor([float(flag)])
    all_reduce(value, op='sum')
    return bool(value.item() > 0)


def fewshot_num_shots(cfg) -> Optional[int]:
    """K of the training set's ``FewShotDataset`` (None when the config
    trains on full data or has no training set)."""
    todo = [cfg.get('train_dataloader')]
    while todo:  # outermost first
        node = todo.pop(0)
        if isinstance(node, dict):
            if node.get('type') == 'FewShotDataset':
                return node.get('num_shots')
            todo.extend(node.values())
        elif isinstance(node, (list, tuple)):
            todo.extend(node)
    return None


def run_identity(runner, dataset=None) -> dict:
    """What a run is: method (its prompt modules, or the config's
    ``method_name``), dataset (the evaluated dataset's
    ``metainfo['dataset']``), seed, config, architecture, protocol (the
    config's ``protocol``: b2n, fewshot, xd or dg) and the number of
    training shots per class."""
    model = unwrap_model(runner.model)
    cfg = runner.cfg
    method = (cfg.get('method_name') or getattr(model, 'method_name', None)
              or type(model).__name__)
    meta = getattr(dataset, 'metainfo', None) or {}
    filename = getattr(cfg, 'filename', None) or ''
    return dict(method=method, dataset=meta.get('dataset'), seed=runner.seed,
                config=os.path.basename(filename),
                arch=getattr(getattr(model, 'clip', None), 'arch', None),
                protocol=cfg.get('protocol'),
                num_shots=fewshot_num_shots(cfg))
