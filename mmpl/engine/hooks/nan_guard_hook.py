"""NaNGuardHook: stop at the first non-finite loss, before a checkpoint
of that iteration is written."""
import math

import torch
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ...utils.errors import TrainingStopped
from ..utils import any_process


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
