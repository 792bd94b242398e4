"""Probes for multi-process tests, imported by the runs' configs through
``custom_imports`` (the test puts this folder on ``PYTHONPATH``).

* ``SampleProbe`` (metric): how many samples the evaluator holds after
  mmengine collected them from every process (``samples``), how many
  distinct dataset indices they are (``distinct``), and the mean score of
  the true class (``true_score``), which changes if any sample is dropped,
  doubled or predicted differently.
* ``SaveCountProbe`` (hook): how many checkpoints each process saved,
  written to ``<work_dir>/saves_rank<r>.json`` at the end of the run.
"""
import json
import os.path as osp

from mmengine.dist import get_rank
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS, METRICS


@METRICS.register_module()
class SampleProbe(BaseMetric):
    default_prefix = 'probe'

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            label = int(sample['gt_label'])
            self.results.append((int(sample['sample_idx']),
                                 float(sample['pred_score'][label])))

    def compute_metrics(self, results: list) -> dict:
        return dict(samples=len(results),
                    distinct=len({idx for idx, _ in results}),
                    true_score=sum(s for _, s in results) / len(results))


@HOOKS.register_module()
class SaveCountProbe(Hook):

    def __init__(self):
        self.saves = 0

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self.saves += 1

    def after_run(self, runner) -> None:
        path = osp.join(runner.work_dir, f'saves_rank{get_rank()}.json')
        with open(path, 'w') as f:
            json.dump(dict(saves=self.saves), f)
