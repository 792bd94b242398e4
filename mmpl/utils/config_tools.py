"""Config edits shared by tools/train.py, tools/test.py and the smoke tool.

Dataset configs nest (``BaseNewDataset(FewShotDataset(CoOpEuroSAT))``) and
appear in several dataloaders, so a plain ``--cfg-options data_root=...``
cannot reach them all; these helpers walk every dataloader.
"""
from typing import Iterator

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
