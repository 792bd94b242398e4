"""Checks of a run's input before the runner is built, each failing with
one line that says what to fix (:mod:`mmpl.utils.errors`).

:func:`mmpl.apis.load_config`, :func:`~mmpl.apis.train` and
:func:`~mmpl.apis.test` call them; they catch what would otherwise surface
minutes later as a traceback from deep inside mmengine or torch: a
mistyped ``--cfg-options`` key, a batch size of 0, a pipeline whose image
size is not the CLIP's, a work dir that cannot be written, a resume
checkpoint that is missing or unreadable.
"""
import difflib
import glob
import inspect
import os
import os.path as osp
import re
import tempfile
from typing import Iterable, List, Optional, Set

from ..utils.config_tools import (iter_dataset_paths, iter_named_loaders,
                                  pipeline_output_size)
from ..utils.errors import CheckpointError, ConfigError, MissingFileError

#: keys of a config the Runner reads that a config need not spell out
RUNNER_KEYS = ('resume', 'load_from', 'work_dir', 'launcher', 'randomness',
               'runner_type', 'strategy', 'model_wrapper_cfg', 'auto_scale_lr',
               'experiment_name', 'find_unused_parameters', 'log_processor',
               'visualizer', 'env_cfg', 'log_level', 'cfg', 'default_scope',
               'custom_imports', 'param_scheduler', 'optim_wrapper',
               'train_cfg', 'val_cfg', 'test_cfg', 'train_dataloader',
               'val_dataloader', 'test_dataloader', 'val_evaluator',
               'test_evaluator', 'default_hooks', 'custom_hooks',
               'data_preprocessor')


def _registries():
    from mmpretrain import registry as r
    names = ('MODELS', 'DATASETS', 'TRANSFORMS', 'HOOKS', 'LOOPS',
             'PARAM_SCHEDULERS', 'OPTIM_WRAPPERS', 'OPTIMIZERS',
             'DATA_SAMPLERS', 'METRICS', 'EVALUATORS', 'VISUALIZERS',
             'VISBACKENDS', 'LOG_PROCESSORS', 'RUNNERS')
    return [getattr(r, n) for n in names if hasattr(r, n)]


def _options_of(kind) -> Optional[Set[str]]:
    """The constructor options of the registered type ``kind`` (every
    registry that knows the name); None when unknown or when a constructor
    takes ``**kwargs`` (any key may be valid)."""
    classes = [kind] if inspect.isclass(kind) else []
    if isinstance(kind, str):
        for registry in _registries():
            try:
                found = registry.get(kind)
            except Exception:  # a scope that is not importable here
                found = None
            if inspect.isclass(found):
                classes.append(found)
    if not classes:
        return None
    names: Set[str] = set()
    for cls in classes:
        try:
            params = inspect.signature(cls.__init__).parameters.values()
        except (TypeError, ValueError):
            return None
        for p in params:
            if p.kind is p.VAR_KEYWORD:
                return None
            names.add(p.name)
    names.discard('self')
    return names | {'type'}


def _unknown_key(key: str, parts: List[str], i: int, owner: str,
                 close: List[str], valid: Iterable[str]) -> ConfigError:
    where = '.'.join(parts[:i]) or 'the config'
    if owner:
        where += f' ({owner})'
    if close:
        hint = 'Did you mean ' + ' or '.join(
            '.'.join(parts[:i] + [c]) for c in close) + '?'
    else:
        hint = 'Valid keys: ' + ', '.join(sorted(valid)) + '.'
    return ConfigError(f'unknown config key {key!r}: {where} has no '
                       f'{parts[i]!r}. {hint}')


def check_cfg_options(cfg, options: Optional[dict]) -> None:
    """Refuse a ``--cfg-options`` key that names nothing the config or the
    module at that place knows: a key missing from a typed dict whose class
    takes no such argument, or a key missing from the config that is a
    near miss of an existing one (``train_cfg.max_epoch``). New keys that
    are not near misses pass (a config may add its own)."""
    for key in options or {}:
        parts = key.split('.')
        node = getattr(cfg, '_cfg_dict', cfg)  # a Config holds a ConfigDict
        for i, part in enumerate(parts):
            if isinstance(node, (list, tuple)):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(
                        f'config key {key!r}: {".".join(parts[:i])} is a list'
                        f' of {len(node)}; index it with 0..{len(node) - 1}')
                node = node[int(part)]
                continue
            if not isinstance(node, dict):
                break  # a value replaced by a dict: mmengine's business
            if part in node:
                node = node[part]
                continue
            if i == 0:
                valid = set(node) | set(RUNNER_KEYS)
                options_ = None
                owner = ''
            else:
                options_ = _options_of(node['type']) if 'type' in node \
                    else None
                valid = set(node) | (options_ or set())
                kind = node.get('type')
                owner = kind if isinstance(kind, str) else \
                    getattr(kind, '__name__', '')
            if part in valid:
                break  # a constructor option the config leaves default
            close = difflib.get_close_matches(part, sorted(valid), n=2,
                                              cutoff=0.75)
            if close or options_ is not None:
                raise _unknown_key(key, parts, i, owner, close, valid)
            break


def check_loaders(cfg) -> None:
    """Batch size >= 1 and workers >= 0 in every dataloader."""
    for key, loader in iter_named_loaders(cfg):
        if not isinstance(loader, dict):
            continue
        size = loader.get('batch_size', 1)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f'{key}.batch_size must be an integer >= 1, '
                              f'got {size!r}. Set it with --cfg-options '
                              f'{key}.batch_size=32')
        workers = loader.get('num_workers', 0)
        if isinstance(workers, bool) or not isinstance(workers, int) \
                or workers < 0:
            raise ConfigError(f'{key}.num_workers must be an integer >= 0, '
                              f'got {workers!r}. Set it with --cfg-options '
                              f'{key}.num_workers=0 (0: load in the main '
                              'process)')


def check_schedule(cfg) -> None:
    """``train_cfg.max_epochs`` / ``max_iters`` an integer >= 1 and the
    optimizer's ``lr`` a number > 0, where the config sets them (a value
    typed wrong in --cfg-options arrives as a string)."""
    train_cfg = cfg.get('train_cfg') or {}
    for key in ('max_epochs', 'max_iters'):
        value = train_cfg.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(
                value, int) or value < 1):
            raise ConfigError(f'train_cfg.{key} must be an integer >= 1, got '
                              f'{value!r}. Set it with --cfg-options '
                              f'train_cfg.{key}=10')
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer') or {}
    lr = optimizer.get('lr') if isinstance(optimizer, dict) else None
    if lr is not None and (isinstance(lr, bool) or not isinstance(
            lr, (int, float)) or not lr > 0):
        raise ConfigError(f'optim_wrapper.optimizer.lr must be a number > 0, '
                          f'got {lr!r}. Set it with --cfg-options '
                          'optim_wrapper.optimizer.lr=0.002')


def check_seed(seed, name: str = '--seed') -> None:
    if seed is not None and (isinstance(seed, bool)
                             or not isinstance(seed, int) or seed < 0):
        raise ConfigError(f'{name} must be an integer >= 0, got {seed!r}. '
                          'The benchmark uses seeds 1, 2, 3 (--seed 1)')


def clip_image_size(clip_cfg: dict) -> Optional[int]:
    """The input side of the configured CLIP architecture (open_clip's
    model config), None when it cannot be told without building it."""
    arch = (clip_cfg or {}).get('arch')
    if not isinstance(arch, str):
        return None
    try:
        import open_clip
        model_cfg = open_clip.get_model_config(arch)
    except Exception:
        return None
    size = ((model_cfg or {}).get('vision_cfg') or {}).get('image_size')
    if isinstance(size, (list, tuple)):
        size = size[0] if len(set(size)) == 1 else None
    return size if isinstance(size, int) else None


def check_input_size(cfg) -> None:
    """The images of every pipeline have the CLIP's input size (a ViT's
    position embeddings fix it; a mismatch would fail in the first
    forward with a tensor-size error)."""
    model = cfg.get('model') or {}
    clip = model.get('clip') if isinstance(model, dict) else None
    side = clip_image_size(clip)
    if side is None:
        return
    for key, node in iter_dataset_paths(cfg):
        if 'pipeline' not in node:
            continue
        out = pipeline_output_size(node['pipeline'])
        if out is not None and out[0] != side:
            raise ConfigError(
                f'{key}.pipeline makes {out[0]} px images ({out[1]}) and the '
                f'CLIP {clip["arch"]} takes {side} px. Set the pipeline\'s '
                f'crop/resize sizes to {side}, or use a CLIP with '
                f'{out[0]} px input')


def _is_mmpl_reader(kind) -> bool:
    """mmpl's readers check their own layout with their own message."""
    from mmpretrain.registry import DATASETS

    from ..datasets import CoOpDatasetBase
    cls = DATASETS.get(kind) if isinstance(kind, str) else kind
    return inspect.isclass(cls) and issubclass(cls, CoOpDatasetBase)


def resume_inexact_reason(cfg) -> Optional[str]:
    """Why resuming ``cfg``'s training would not replay the uninterrupted
    run's augmentations (None when it would): dataloader workers draw them
    from a random state set when each worker starts, unless mmpl's
    ``SeededSampler`` hands each sample its seed and an mmpl dataset (a
    reader or a wrapper) applies it (:mod:`mmpl.datasets.samplers`)."""
    from mmpretrain.registry import DATA_SAMPLERS, DATASETS

    from ..datasets import CoOpDatasetBase, IndexSubsetWrapper, SeededSampler
    loader = cfg.get('train_dataloader') or {}
    if not loader.get('num_workers', 0):
        return None  # the main process's random state is checkpointed
    sampler = (loader.get('sampler') or {}).get('type')
    sampler = DATA_SAMPLERS.get(sampler) if isinstance(sampler, str) \
        else sampler
    dataset = (loader.get('dataset') or {}).get('type')
    dataset = DATASETS.get(dataset) if isinstance(dataset, str) else dataset
    seeded = inspect.isclass(sampler) and issubclass(sampler, SeededSampler)
    applies = inspect.isclass(dataset) and issubclass(
        dataset, (CoOpDatasetBase, IndexSubsetWrapper))
    if seeded and applies:
        return None
    what = (f'sampler {getattr(sampler, "__name__", sampler)}' if not seeded
            else f'dataset {getattr(dataset, "__name__", dataset)}')
    return (f'resuming with dataloader workers and {what}: the augmentations '
            'after the resume point differ from an uninterrupted run. For '
            "an exact resume use sampler=dict(type='SeededSampler') with "
            'an mmpl dataset (or num_workers=0)')


def check_data_roots(cfg) -> None:
    """The image folder (``data_root`` + ``data_prefix``) of every dataset
    that is not one of mmpl's readers (e.g. mmpretrain's
    ``CustomDataset``) exists."""
    for key, node in iter_dataset_paths(cfg):
        root = node.get('data_root')
        if not isinstance(root, str) or '://' in root or \
                _is_mmpl_reader(node.get('type')):
            continue
        prefix = node.get('data_prefix') or ''
        if isinstance(prefix, dict):
            prefix = prefix.get('img_path') or ''
        path = osp.join(root, prefix) if isinstance(prefix, str) else root
        if not osp.exists(path):
            kind = node.get('type')
            kind = kind if isinstance(kind, str) else \
                getattr(kind, '__name__', 'dataset')
            raise MissingFileError(
                f'{kind} data not found: {path!r} ({key}) does not exist. '
                'Put the images there (one folder per class) or point to '
                f'them with --data-root or --cfg-options {key}.data_root=PATH')


def check_work_dir(work_dir: str) -> None:
    """``work_dir`` is a folder this process can write: created (as the
    runner would) and probed with a temporary file of its own."""
    path = osp.abspath(work_dir)
    if osp.exists(path) and not osp.isdir(path):
        raise ConfigError(f'work dir {work_dir!r} is a file. Give a folder '
                          'with --work-dir')
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(
            f'work dir {work_dir!r} is not writable ({exc.strerror}). Give '
            'a folder you can write with --work-dir') from exc


def read_checkpoint(path: str, what: str = 'checkpoint') -> dict:
    """The checkpoint at ``path`` (``torch.load(weights_only=True)``, on
    CPU); one line when it is missing or cannot be read."""
    if not osp.isfile(path):
        raise MissingFileError(f'{what} not found: {path!r}. Give the path '
                               'of a .pth file written by tools/train.py')
    import torch

    from ..engine.checkpoint import register_checkpoint_safe_globals
    register_checkpoint_safe_globals()
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(
            f'cannot read {what} {path!r} ({reason[:160]}). Give a .pth '
            'file written by tools/train.py') from exc
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{what} {path!r} holds a '
                              f'{type(ckpt).__name__}, not a checkpoint. '
                              'Give a .pth file written by tools/train.py')
    return ckpt


_NUMBERED = re.compile(r'(epoch|iter)_(\d+)\.pth$')


def find_resume_checkpoint(work_dir: str) -> str:
    """The checkpoint ``--resume`` continues from: the one mmengine's
    ``last_checkpoint`` file names, looked up in ``work_dir`` itself when
    the work dir was moved (the file holds an absolute path), else the
    latest ``epoch_N.pth`` / ``iter_N.pth``. One line when there is
    none."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker) as f:
            named = f.read().strip()
        for path in (named, osp.join(work_dir, osp.basename(named))):
            if named and osp.isfile(path):
                return path
    numbered = [(m.group(1) == 'iter', int(m.group(2)), p)
                for p in glob.glob(osp.join(glob.escape(work_dir), '*.pth'))
                for m in [_NUMBERED.search(osp.basename(p))] if m]
    if numbered:
        return max(numbered)[2]
    raise MissingFileError(
        f'--resume: nothing to resume in {work_dir!r} (no checkpoint there). '
        'Drop --resume to train from the start, or give the checkpoint: '
        '--resume PATH')


def check_checkpoint_fits(model, ckpt: dict, path: str) -> None:
    """A test checkpoint holds this model's trainable parameters and, for
    an mmpl checkpoint, was trained with the same prompt method."""
    from ..engine.utils import unwrap_model
    model = unwrap_model(model)
    meta = (ckpt.get('meta') or {}).get('mmpl') or {}
    method = meta.get('text_prompt')
    mine = type(getattr(model, 'text_prompt', None)).__name__
    if method and hasattr(model, 'text_prompt') and method != mine:
        raise CheckpointError(
            f'checkpoint {path!r} was trained with {method} and the config '
            f'builds {mine}. Test it with the config it was trained with')
    state = ckpt.get('state_dict', ckpt)
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()} if isinstance(state, dict) else {}
    wanted = [k for k, p in model.named_parameters() if p.requires_grad]
    missing = [k for k in wanted if k not in state]
    if missing:
        some = 'none' if len(missing) == len(wanted) else \
            f'{len(wanted) - len(missing)} of {len(wanted)}'
        raise CheckpointError(
            f'checkpoint {path!r} holds {some} of this model\'s trainable '
            f'parameters (missing: {missing[0]}{", ..." * (len(missing) > 1)}'
            '). Give a checkpoint written by tools/train.py with this config'
            ' (CLIP weights go to model.clip.pretrained)')
