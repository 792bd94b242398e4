"""A test run that keeps every prediction, per evaluated split: what
``tools/test.py --out-item pred`` writes, ``tools/test.py --show-dir``
draws and ``tools/analysis_tools/confusion_matrix.py`` counts.

    from mmpl.apis import load_config
    from mmpl.apis.analysis import test_predictions, write_confusion_matrices
    metrics, splits = test_predictions(load_config(config), checkpoint)
    splits['new'].classes, splits['new'].records[0]['pred_label']
    write_confusion_matrices(splits, 'cm/')   # cm/base.png, cm/base.csv, ...

mmpretrain's tools read one test dataloader and one class list
(``runner.test_loop.dataloader.dataset``, metric keys without a split
prefix); mmpl's base-to-new configs evaluate named splits (base / new),
each with its own class names and labels from 0, so a prediction only
means something with its split's class names: every result here is keyed
by split (``'test'`` for a config with one unnamed split).
"""
import csv
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch

from ..engine.utils import split_label
from ..utils.checks import check_int
from ..utils.errors import ConfigError
from ..utils.io import OUTPUTS_FILE, check_outputs, mark_outputs
from .run import test


@dataclass
class SplitPredictions:
    """The predictions of one evaluated split.

    ``name``: the split (``'test'`` when unnamed); ``classes``: its class
    names (index = label); ``records``: one dict per sample, in dataset
    order (see :class:`~mmpl.evaluation.predictions.PredictionRecords`).
    """
    name: str
    classes: List[str]
    records: List[dict]

    def confusion_matrix(self) -> torch.Tensor:
        """(C, C) counts: row = true class, column = predicted class."""
        from mmpretrain.evaluation import ConfusionMatrix
        pred = torch.tensor([r['pred_label'] for r in self.records])
        true = torch.tensor([r['gt_label'] for r in self.records])
        return ConfusionMatrix.calculate(pred, true,
                                         num_classes=len(self.classes))

    def as_plain(self) -> dict:
        """JSON-ready: the class names and each prediction with names."""
        names = self.classes
        rows = [dict(r, gt_class=names[r['gt_label']],
                     pred_class=names[r['pred_label']],
                     topk_classes=[names[j] for j in r['topk_labels']])
                for r in self.records]
        return dict(classes=list(names), predictions=rows)


def test_split_names(cfg) -> List[str]:
    """The split labels a test run of ``cfg`` reports (``'test'`` for one
    unnamed split), before anything is built."""
    loader = cfg.get('test_dataloader')
    if not loader:
        raise ConfigError('the config has no test_dataloader. Give a config '
                          'with test splits')
    return [split_label('')] if 'dataset' in loader else list(loader)


def add_prediction_records(cfg, topk: int = 5) -> None:
    """Append :class:`PredictionRecords` to the config's test evaluator
    (in place); every split gets its own copy."""
    check_int('topk', topk)
    evaluator = cfg.get('test_evaluator') or []
    evaluator = list(evaluator) if isinstance(evaluator, (list, tuple)) \
        else [evaluator]
    cfg.test_evaluator = evaluator + [dict(type='PredictionRecords',
                                           topk=topk)]


def _split_evaluators(loop) -> Dict[str, Tuple[list, object]]:
    """label -> (class names, evaluator) of a test loop: mmpl's
    multi-split loops or mmengine's ``TestLoop``."""
    if hasattr(loop, 'split_evaluators'):
        classes = loop.split_classes()
        return {split_label(name): (list(classes[name]), evaluator)
                for name, evaluator in loop.split_evaluators().items()}
    meta = getattr(loop.dataloader.dataset, 'metainfo', None) or {}
    return {split_label(''): (list(meta.get('classes') or ()),
                              loop.evaluator)}


def collect_predictions(loop) -> Dict[str, SplitPredictions]:
    """The records each split's :class:`PredictionRecords` kept during the
    run of ``loop`` (main process)."""
    from ..evaluation.predictions import PredictionRecords
    out = {}
    for name, (classes, evaluator) in _split_evaluators(loop).items():
        kept = [m for m in evaluator.metrics
                if isinstance(m, PredictionRecords)]
        if not kept:
            raise RuntimeError(f'split {name!r} has no PredictionRecords '
                               'metric (add_prediction_records first)')
        out[name] = SplitPredictions(name, classes, kept[0].records)
    return out


def test_predictions(cfg, checkpoint: Optional[str] = None, topk: int = 5,
                     check_only: bool = False
                     ) -> Tuple[Optional[dict],
                                Optional[Dict[str, SplitPredictions]]]:
    """:func:`~mmpl.apis.test` that also returns every prediction, per
    split: ``(metrics, {split: SplitPredictions})`` on the main process,
    ``(None, None)`` on the others and with ``check_only``."""
    add_prediction_records(cfg, topk)
    kept = {}
    metrics = test(cfg, checkpoint, check_only=check_only,
                   before=lambda runner: kept.update(loop=runner.test_loop))
    if metrics is None:
        return None, None
    return metrics, collect_predictions(kept.pop('loop'))


def enable_show_dir(cfg, out_dir: str, num: int = 16, topk: int = 3) -> None:
    """Draw ``num`` test images per split with their true and top-``topk``
    predicted classes into ``out_dir/<split>/`` (in place: mmpl's
    :class:`~mmpl.engine.SplitVisualizationHook` replaces the config's
    visualization hook). Refuses a split folder holding files mmpl did
    not write there."""
    check_int('--show-num', num)
    check_int('--show-topk', topk)
    check_outputs(out_dir, [], '--show-dir')
    for name in test_split_names(cfg):
        folder = osp.join(out_dir, name)
        if osp.isdir(folder):
            check_outputs(folder, [n for n in os.listdir(folder)
                                   if n != OUTPUTS_FILE], '--show-dir')
    hooks = cfg.get('default_hooks') or {}
    hooks['visualization'] = dict(type='SplitVisualizationHook', enable=True,
                                  out_dir=out_dir, num=num, topk=topk)
    cfg.default_hooks = hooks


def confusion_matrix_files(names: List[str]) -> List[str]:
    """The files :func:`write_confusion_matrices` writes for splits
    ``names``."""
    return [f'{n}{ext}' for n in names for ext in ('.png', '.csv')]


def write_confusion_matrices(splits: Dict[str, SplitPredictions],
                             out_dir: str, include_values: bool = False,
                             cmap: str = 'viridis') -> List[str]:
    """``<out_dir>/<split>.csv`` (counts; rows = true class, columns =
    predicted class, both named) and ``<split>.png`` (mmpretrain's
    ``ConfusionMatrix.plot``, class names on the axes) per split; returns
    the paths."""
    from mmpretrain.evaluation import ConfusionMatrix

    from ..evaluation.plots import pyplot
    plt = pyplot()
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, split in splits.items():
        matrix = split.confusion_matrix()  # (C, C)
        csv_path = osp.join(out_dir, f'{name}.csv')
        with open(csv_path, 'w', newline='', encoding='utf-8') as f:
            writer = csv.writer(f)
            writer.writerow(['true \\ predicted'] + split.classes)
            for cls, row in zip(split.classes, matrix.tolist()):
                writer.writerow([cls] + row)
        fig = ConfusionMatrix.plot(matrix, include_values=include_values,
                                   cmap=cmap, classes=split.classes,
                                   show=False)
        side = min(60.0, max(10.0, 0.3 * len(split.classes)))
        fig.set_size_inches(side, side)
        total = int(matrix.sum())
        accuracy = 100.0 * float(matrix.diagonal().sum()) / max(total, 1)
        fig.suptitle(f'{name}: {total} images, {len(split.classes)} '
                     f'classes, top-1 {accuracy:.2f} %')
        png_path = osp.join(out_dir, f'{name}.png')
        fig.savefig(png_path, dpi=100, bbox_inches='tight')
        plt.close(fig)
        paths += [png_path, csv_path]
    mark_outputs(out_dir, [osp.basename(p) for p in paths])
    return paths
