"""Config edits shared by tools/train.py, tools/test.py and the smoke tool.

Dataset configs nest (``BaseNewDataset(FewShotDataset(CoOpEuroSAT))``) and
appear in several dataloaders, so a plain ``--cfg-options data_root=...``
cannot reach them all; these helpers walk every dataloader.

One style: every edit is an ``*_options(cfg, ...)`` function returning
``--cfg-options`` (dotted keys), so that the same change applies in
process (``cfg.merge_from_dict``) and on a tool's command line; the
``set_*`` / ``replace_*`` forms apply it to ``cfg`` in place.
"""
import os.path as osp
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from .errors import ConfigError

DATALOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _walk(node, path: Tuple = ()) -> Iterator[Tuple[Tuple, dict]]:
    """``(path, node)`` for every typed dict under ``node``, outermost
    first; ``path`` is the tuple of keys / list indices leading to it."""
    if isinstance(node, dict):
        if 'type' in node:
            yield path, node
        for key, value in node.items():
            yield from _walk(value, path + (key, ))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _walk(value, path + (i, ))


def iter_dataset_paths(cfg) -> Iterator[Tuple[str, dict]]:
    """``(dotted key, node)`` of every typed dict under the dataloaders, the
    key as ``--cfg-options`` takes it (e.g.
    ``val_dataloader.eurosat.dataset``)."""
    for key in DATALOADER_KEYS:
        loader = cfg.get(key)
        if loader is not None:
            for path, node in _walk(loader):
                yield '.'.join(map(str, (key, ) + path)), node


def iter_dataset_cfgs(cfg) -> Iterator[dict]:
    """Every typed dict under the dataloaders (datasets, wrappers, samplers,
    transforms), outermost first."""
    for _, node in iter_dataset_paths(cfg):
        yield node


def same_data_root_options(cfg, data_root: str) -> Dict[str, str]:
    """``--cfg-options`` pointing every dataset that has a ``data_root``
    to ``data_root``."""
    return {f'{key}.data_root': data_root
            for key, node in iter_dataset_paths(cfg) if 'data_root' in node}


def set_data_root(cfg, data_root: str) -> int:
    """:func:`same_data_root_options` in place; returns how many datasets
    were changed."""
    options = same_data_root_options(cfg, data_root)
    cfg.merge_from_dict(options)
    return len(options)


def seed_options(cfg, seed: int) -> Dict[str, int]:
    """``--cfg-options`` of one run seed: the runner's randomness and every
    few-shot sample (``FewShotDataset.seed``; the benchmark uses the same
    seed for both)."""
    options = {f'{key}.seed': seed for key, node in iter_dataset_paths(cfg)
               if node.get('type') == 'FewShotDataset'}
    options['randomness.seed'] = seed
    return options


def set_fewshot_seed(cfg, seed: int) -> int:
    """Seed every few-shot sampler in place; returns how many."""
    options = seed_options(cfg, seed)
    del options['randomness.seed']
    cfg.merge_from_dict(options)
    return len(options)


def set_runtime_seed(cfg, seed: int) -> None:
    """:func:`seed_options` in place."""
    cfg.merge_from_dict(seed_options(cfg, seed))


def iter_named_loaders(cfg) -> Iterator[Tuple[str, dict]]:
    """``(dotted key, dataloader config)``: the train one and each named
    evaluation split (``val_dataloader.base``, ...)."""
    for key in DATALOADER_KEYS:
        loader = cfg.get(key)
        if loader is None:
            continue
        if 'dataset' in loader:
            yield key, loader
        else:
            for name, split in loader.items():
                yield f'{key}.{name}', split


def loader_options(cfg, batch_size: Optional[int] = None,
                   max_batch_size: Optional[int] = None,
                   num_workers: Optional[int] = None,
                   persistent_workers: Optional[bool] = None
                   ) -> Dict[str, Any]:
    """``--cfg-options`` setting the batch size (fixed or capped), the
    workers and whether they persist (``persistent_workers``; mmpretrain's
    ``--no-persistent-workers`` is False) of every dataloader."""
    options: Dict[str, Any] = {}
    for key, loader in iter_named_loaders(cfg):
        if batch_size is not None:
            options[f'{key}.batch_size'] = batch_size
        if max_batch_size is not None:
            options[f'{key}.batch_size'] = min(
                options.get(f'{key}.batch_size', loader.get('batch_size', 1)),
                max_batch_size)
        if num_workers is not None:
            options[f'{key}.num_workers'] = num_workers
            if num_workers == 0:
                options[f'{key}.persistent_workers'] = False
        if persistent_workers is not None:
            options[f'{key}.persistent_workers'] = persistent_workers
    return options


def set_loader_options(cfg, batch_size: Optional[int] = None,
                       max_batch_size: Optional[int] = None,
                       num_workers: Optional[int] = None,
                       persistent_workers: Optional[bool] = None) -> None:
    """Batch size (fixed or capped), workers and their persistence of every
    dataloader, in place (see :func:`loader_options`)."""
    cfg.merge_from_dict(loader_options(cfg, batch_size, max_batch_size,
                                       num_workers, persistent_workers))


def clip_options(cfg, clip: dict) -> Dict[str, Any]:
    """``--cfg-options`` swapping the CLIP (arch/weights), keeping the
    memory options."""
    old = cfg.model.get('clip', {})
    return {'model.clip': dict(clip, _delete_=True,
                               grad_checkpointing=old.get(
                                   'grad_checkpointing', False))}


def replace_clip(cfg, clip: dict) -> None:
    """:func:`clip_options` in place."""
    cfg.merge_from_dict(clip_options(cfg, clip))


def reader_options(cfg, make_reader: Callable[[dict], dict]
                   ) -> Dict[str, dict]:
    """``--cfg-options`` replacing every dataset reader (a node with
    ``data_root``) by ``make_reader(node)``; wrappers around it stay."""
    return {key: dict(make_reader(dict(node)), _delete_=True)
            for key, node in list(iter_dataset_paths(cfg))
            if 'data_root' in node}


def replace_readers(cfg, make_reader: Callable[[dict], dict]) -> None:
    """:func:`reader_options` in place."""
    cfg.merge_from_dict(reader_options(cfg, make_reader))


#: transform type -> the key holding the size of the image it outputs
SIZE_KEYS = {'RandomResizedCrop': 'scale', 'CenterCrop': 'crop_size',
              'RandomCrop': 'crop_size', 'Resize': 'scale'}


def pipeline_output_size(pipeline) -> Optional[Tuple[int, str]]:
    """(side, transform) of the last transform that fixes a square output
    size, None when the pipeline has none."""
    found = None
    for t in pipeline or ():
        kind = t.get('type') if isinstance(t, dict) else None
        kind = kind.split('.')[-1] if isinstance(kind, str) else kind
        key = SIZE_KEYS.get(kind)
        if key is None or key not in t:
            continue
        size = t[key]
        if isinstance(size, (list, tuple)) and len(size) == 2 \
                and size[0] == size[1]:
            size = size[0]
        if isinstance(size, int) and not isinstance(size, bool):
            found = (size, f'{kind} {key}={t[key]!r}')
    return found


def image_size_options(cfg, size: int) -> Dict[str, int]:
    """``--cfg-options`` making every pipeline output ``size`` px images:
    the size keys (``scale``, ``crop_size``) of its transforms that equal
    its current output size (:func:`pipeline_output_size`) are set to
    ``size`` (e.g. 64 -> 224 for the tiny CLIP of the smoke runs)."""
    options: Dict[str, int] = {}
    for key, node in iter_dataset_paths(cfg):
        out = pipeline_output_size(node.get('pipeline'))
        if out is None or out[0] == size:
            continue
        for i, t in enumerate(node['pipeline']):
            for k in ('scale', 'crop_size'):
                if isinstance(t, dict) and t.get(k) in (out[0],
                                                        (out[0], out[0])):
                    options[f'{key}.pipeline.{i}.{k}'] = size
    return options


def set_image_size(cfg, size: int) -> None:
    """:func:`image_size_options` in place."""
    cfg.merge_from_dict(image_size_options(cfg, size))


def data_root_options(cfg, root: str) -> Dict[str, str]:
    """``--cfg-options`` that move every dataset of ``cfg`` under ``root``:
    a reader's ``data_root`` ``data/eurosat`` becomes ``<root>/eurosat``
    (the dataset folder names of the benchmark layout)."""
    return {f'{key}.data_root': osp.join(
        root, osp.basename(osp.normpath(node['data_root'])))
        for key, node in iter_dataset_paths(cfg) if 'data_root' in node}


def num_shots_options(cfg, num_shots: int) -> Dict[str, Any]:
    """``--cfg-options`` selecting ``num_shots`` training images per class:
    every ``FewShotDataset.num_shots``, and ``train_cfg.max_epochs`` when
    the config has a schedule by shots (``fewshot_epochs = {K: epochs}``,
    e.g. CoOp's 50 / 100 / 200 epochs)."""
    options: Dict[str, Any] = {
        f'{key}.num_shots': num_shots
        for key, node in iter_dataset_paths(cfg)
        if node.get('type') == 'FewShotDataset'
    }
    name = osp.basename(getattr(cfg, 'filename', None) or 'the config')
    if not options:
        raise ConfigError(f'{name} has no FewShotDataset: it does not select '
                          'shots')
    epochs = cfg.get('fewshot_epochs') or {}
    if epochs:
        if num_shots not in epochs:
            raise ConfigError(
                f'{name}: no schedule '
                f'for {num_shots} shots in fewshot_epochs {dict(epochs)}; '
                'add it or pass train_cfg.max_epochs')
        options['train_cfg.max_epochs'] = epochs[num_shots]
    return options
