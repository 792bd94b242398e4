"""Hooks: class names in step with the data, plain checkpoints, results."""
import json
import math
import os
from typing import Optional

import torch
from mmengine.dist import all_reduce, is_distributed, is_main_process
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ..models.classifier import shape_mismatch
from ..utils.errors import CheckpointError, TrainingStopped
from .checkpoint import (from_plain_data, rng_state, set_rng_state,
                         to_plain_data)
from .loops import set_model_classes, unwrap_model


@HOOKS.register_module()
class ClassNamesHook(Hook):
    """Give the model the training dataset's class names (and template)
    before every training epoch. The evaluation loops switch to each
    evaluated split's names and switch back afterwards."""

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        set_model_classes(runner.model, runner.train_dataloader.dataset)

    def before_train_epoch(self, runner) -> None:
        set_model_classes(runner.model, runner.train_dataloader.dataset)


@HOOKS.register_module()
class PlainCheckpointHook(Hook):
    """Keep checkpoints to plain data so that they load with
    ``torch.load(weights_only=True)`` (no arbitrary pickled objects: a
    checkpoint from an untrusted source cannot run code), and add the
    model's rebuild meta under ``meta['mmpl']`` (architecture, weights,
    class names, mmpl version), the one place it is stored. On load
    (``load_from``, ``--resume``, before the weights reach the model) it
    checks the checkpoint against the model, naming both sides from that
    meta.

    It also saves the Python/NumPy/torch generator states and restores them
    on resume, so that an interrupted run continues with the same
    augmentations as an uninterrupted one. The model's ``state_dict``
    already holds only the trainable prompt parameters (the frozen CLIP is
    not part of it).
    """

    priority = 'VERY_LOW'  # after every hook that adds to the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = unwrap_model(runner.model)
        if hasattr(model, 'checkpoint_meta'):
            checkpoint.setdefault('meta', {})['mmpl'] = model.checkpoint_meta()
        for key in list(checkpoint):
            if key not in ('state_dict', 'optimizer'):
                checkpoint[key] = to_plain_data(checkpoint[key])
        checkpoint['rng_state'] = rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = unwrap_model(runner.model)
        state_dict = checkpoint.get('state_dict') or {}
        if any(k.startswith('module.') for k in state_dict):
            state_dict = {k[len('module.'):] if k.startswith('module.') else
                          k: v for k, v in state_dict.items()}
        mismatch = shape_mismatch(model, state_dict)
        if mismatch:
            key, theirs, mine = mismatch
            meta = (checkpoint.get('meta') or {}).get('mmpl') or {}
            here = getattr(model, 'checkpoint_meta', dict)()
            raise CheckpointError(
                f'checkpoint does not fit this model: {key} has shape '
                f'{theirs} in the checkpoint ({_describe(meta)}) and {mine} '
                f'here ({_describe(here)})')
        self._check_trained_classes(runner, checkpoint)
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = from_plain_data(
                checkpoint['message_hub'])
        if runner._resume and 'rng_state' in checkpoint:
            set_rng_state(checkpoint['rng_state'])


    @staticmethod
    def _check_trained_classes(runner, checkpoint: dict) -> None:
        """Testing a base-to-new checkpoint: its training classes are the
        base split's (same count), else the checkpoint belongs to another
        dataset."""
        loop = getattr(runner, '_test_loop', None)
        trained = ((checkpoint.get('meta') or {}).get('mmpl') or {}).get(
            'classes')
        if runner._resume or not trained or \
                not hasattr(loop, 'split_classes'):
            return
        base = loop.split_classes().get('base')
        if base and len(base) != len(trained):
            raise CheckpointError(
                f'checkpoint was trained on {len(trained)} classes '
                f'({", ".join(trained[:3])}, ...) and this config\'s base '
                f'split has {len(base)} ({", ".join(base[:3])}, ...). Test '
                'it with the config (dataset) it was trained on')


def _describe(meta: dict) -> str:
    """``'arch X, 10 classes'`` from a model's checkpoint meta."""
    text = f'arch {meta.get("arch", "?")}'
    if meta.get('classes'):
        text += f', {len(meta["classes"])} classes'
    return text


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


@HOOKS.register_module()
class RunResultsHook(Hook):
    """Write the final evaluation of a run to ``<work_dir>/results.json``
    (val, after training) and ``test_results.json`` (tools/test.py): the
    metrics plus the run's identity (:func:`run_identity`), which
    ``tools/analysis_tools/report.py`` aggregates over seeds."""

    priority = 'LOW'

    def _write(self, runner, loop, name: str, metrics: dict) -> None:
        if not metrics or not is_main_process():
            return
        record = dict(run_identity(runner, loop.dataloader.dataset),
                      metrics=to_plain_data(metrics))
        with open(os.path.join(runner.work_dir, name), 'w') as f:
            # a tensor-valued metric (mmpretrain's ConfusionMatrix) as a list
            json.dump(record, f, indent=2, default=_tensor_as_list)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._write(runner, runner.val_loop, 'results.json', metrics)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._write(runner, runner.test_loop, 'test_results.json', metrics)


def _tensor_as_list(value):
    """``json.dump``'s fallback: a tensor as (nested) lists."""
    if torch.is_tensor(value):
        return value.tolist()
    raise TypeError(f'{type(value).__name__} is not JSON serializable')


def any_process(flag: bool) -> bool:
    """Whether ``flag`` is true in any process (the flag itself when not
    distributed). Every process must call it at the same point."""
    if not is_distributed():
        return flag
    value = torch.tensor([float(flag)])
    all_reduce(value, op='sum')
    return bool(value.item() > 0)


@HOOKS.register_module()
class NaNGuardHook(Hook):
    """Stop training at the first non-finite loss, before any checkpoint of
    that iteration is written (a good checkpoint is never replaced by a NaN
    one), with one line naming the iteration and the last good checkpoint.

    In a multi-process run every process stops at the same iteration when
    any one of them sees a non-finite loss: the gradients are averaged, so
    one process's NaN reaches every model, and the process that writes
    checkpoints may not have seen it in its own loss."""

    priority = 'VERY_HIGH'  # before CheckpointHook saves anything

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        losses = {k: float(v.detach()) if torch.is_tensor(v) else float(v)
                  for k, v in (outputs or {}).items() if k.startswith('loss')}
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if not any_process(bool(bad)):
            return
        last = runner.message_hub.get_info('last_ckpt')
        raise TrainingStopped(
            f'non-finite loss at iteration {runner.iter + 1} (epoch '
            f'{runner.epoch + 1}): {bad or "in another process"}; training '
            'stopped, no checkpoint written for it. Last good checkpoint: '
            f'{last or "none yet"} (lower the lr or check the data, then '
            '--resume)')
