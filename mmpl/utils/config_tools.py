"""Config edits shared by tools/train.py, tools/test.py and the smoke tool.

Dataset configs nest (``BaseNewDataset(FewShotDataset(CoOpEuroSAT))``) and
appear in several dataloaders, so a plain ``--cfg-options data_root=...``
cannot reach them all; these helpers walk every dataloader.
"""
from typing import Callable, Iterator, Optional

DATALOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _walk(node) -> Iterator[dict]:
    if isinstance(node, dict):
        if 'type' in node:
            yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _walk(value)


def iter_dataset_cfgs(cfg) -> Iterator[dict]:
    """Every typed dict under the dataloaders (datasets, wrappers, samplers,
    transforms), outermost first."""
    for key in DATALOADER_KEYS:
        loader = cfg.get(key)
        if loader is not None:
            yield from _walk(loader)


def set_data_root(cfg, data_root: str) -> int:
    """Point every dataset that has a ``data_root`` to ``data_root``.
    Returns how many were changed."""
    changed = 0
    for node in iter_dataset_cfgs(cfg):
        if 'data_root' in node:
            node['data_root'] = data_root
            changed += 1
    return changed


def set_fewshot_seed(cfg, seed: int) -> int:
    """Seed every few-shot sampler (``FewShotDataset.seed``)."""
    changed = 0
    for node in iter_dataset_cfgs(cfg):
        if node.get('type') == 'FewShotDataset':
            node['seed'] = seed
            changed += 1
    return changed


def set_runtime_seed(cfg, seed: int) -> None:
    """One run seed: the runner's randomness and the few-shot sample (the
    benchmark uses the same seed for both)."""
    cfg.setdefault('randomness', {})
    cfg.randomness['seed'] = seed
    set_fewshot_seed(cfg, seed)


def iter_loader_cfgs(cfg) -> Iterator[dict]:
    """Every dataloader config: the train one and each named eval split."""
    for key in DATALOADER_KEYS:
        loader = cfg.get(key)
        if loader is None:
            continue
        if 'dataset' in loader:
            yield loader
        else:
            yield from loader.values()


def set_loader_options(cfg, batch_size: Optional[int] = None,
                       max_batch_size: Optional[int] = None,
                       num_workers: Optional[int] = None) -> None:
    """Batch size (fixed or capped) and workers of every dataloader."""
    for loader in iter_loader_cfgs(cfg):
        if batch_size is not None:
            loader['batch_size'] = batch_size
        if max_batch_size is not None:
            loader['batch_size'] = min(loader.get('batch_size', 1),
                                       max_batch_size)
        if num_workers is not None:
            loader['num_workers'] = num_workers
            if num_workers == 0:
                loader['persistent_workers'] = False


def replace_clip(cfg, clip: dict) -> None:
    """Swap the CLIP (arch/weights), keeping the memory options."""
    old = cfg.model.get('clip', {})
    cfg.model.clip = dict(clip, grad_checkpointing=old.get(
        'grad_checkpointing', False))


def replace_readers(cfg, make_reader: Callable[[dict], dict]) -> None:
    """Replace every dataset reader (a node with ``data_root``) by
    ``make_reader(node)``; wrappers around it stay."""
    for node in list(iter_dataset_cfgs(cfg)):
        if 'data_root' in node:
            new = make_reader(dict(node))
            node.clear()
            node.update(new)


def set_image_size(cfg, size: int, default: int = 224) -> None:
    """Change the input resolution of every resize/crop transform from
    ``default`` (CLIP's 224) to ``size``."""
    for node in iter_dataset_cfgs(cfg):
        for key in ('scale', 'crop_size'):
            if node.get(key) == default:
                node[key] = size
