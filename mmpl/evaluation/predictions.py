"""Every test sample's prediction, kept for the tools that need more than
a metric: ``tools/test.py --out-item pred`` writes them and
``tools/analysis_tools/confusion_matrix.py`` counts them, per evaluated
split (base / new).

mmpretrain's ``DumpResults`` writes one pickle per evaluator to a fixed
path; mmpl evaluates several named splits in one run, each with its own
copy of the test evaluator, so :class:`PredictionRecords` keeps its split's
records on the metric instead (``records``, on the main process after
``evaluate``: mmengine gathers every process's samples there first) and
the caller reads them per split
(:meth:`~mmpl.engine.loops.MultiSplitTestLoop.split_evaluators`).
"""
from typing import List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS

from ..utils.checks import check_int


@METRICS.register_module()
class PredictionRecords(BaseMetric):
    """Keep each sample's top-k prediction as a plain dict; adds no metric.

    Args:
        topk: classes kept per sample [5].
        collect_device, prefix: as mmengine's ``BaseMetric``.

    After ``evaluate``, ``records`` (main process) holds one dict per
    sample, in dataset order: ``sample_idx``, ``img_path`` (None when the
    dataset gives none), ``gt_label``, ``pred_label``, ``pred_score`` and
    ``topk_labels`` / ``topk_scores`` (softmax scores over the split's
    classes).
    """
    default_prefix = 'predictions'

    def __init__(self, topk: int = 5, collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        check_int('topk', topk, owner='PredictionRecords')
        self.topk = topk
        self.records: List[dict] = []

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        if not data_samples:
            return
        scores = torch.stack([s['pred_score'] for s in data_samples])
        scores = scores.float().cpu()  # (B, C)
        k = min(self.topk, scores.shape[1])
        top_scores, top_labels = scores.topk(k, dim=1)  # (B, k) each
        gt = torch.cat([s['gt_label'] for s in data_samples]).tolist()
        for sample, label, labels, values in zip(
                data_samples, gt, top_labels.tolist(), top_scores.tolist()):
            self.results.append(dict(
                sample_idx=sample.get('sample_idx'),
                img_path=sample.get('img_path'), gt_label=label,
                pred_label=labels[0], pred_score=values[0],
                topk_labels=labels, topk_scores=values))

    def compute_metrics(self, results: list) -> dict:
        self.records = sorted(results, key=lambda r: (
            r['sample_idx'] is None, r['sample_idx'] or 0))
        return {}
