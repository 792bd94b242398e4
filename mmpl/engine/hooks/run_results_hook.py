"""RunResultsHook: a run's final evaluation and identity as JSON."""
import json
import os

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ..checkpoint import to_plain_data
from ..utils import run_identity


@HOOKS.register_module()
class RunResultsHook(Hook):
    """Write the final evaluation of a run to ``<work_dir>/results.json``
    (val, after training) and ``test_results.json`` (tools/test.py): the
    metrics plus the run's identity (:func:`~mmpl.engine.run_identity`),
    which ``tools/analysis_tools/report.py`` aggregates over seeds."""

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
