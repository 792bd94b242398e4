"""Evaluation over several named splits in one run, switching class names.

Base-to-new: ``val_dataloader = dict(base=<dataloader cfg>, new=<...>)``
evaluates the base test set with the base class names and the new test set
with the new class names, and reports ``base/accuracy/top1``,
``new/accuracy/top1`` and ``harmonic_mean``. The same loops serve the other
protocols (``dict(eurosat=..., dtd=...)`` -> ``eurosat/accuracy/top1`` ...).
A plain dataloader config (with a ``dataset`` key) is one unnamed split.
"""
import copy
from typing import Dict, Optional, Union

import torch
from mmengine.evaluator import Evaluator
from mmengine.runner import BaseLoop
from mmengine.runner.amp import autocast
from mmpretrain.registry import LOOPS
from torch.utils.data import DataLoader

from ..constants import BASE_KEY, NEW_KEY
from ..evaluation import harmonic_mean
from ..utils.errors import ConfigError
from .utils import set_model_classes, unwrap_model


class _SplitDataloader(BaseLoop):
    """Builds one split's dataloader as mmengine's loops build theirs
    (:class:`~mmengine.runner.BaseLoop`: the runner's seed and its
    ``randomness.diff_rank_seed``); never run."""

    def run(self):
        raise NotImplementedError('only builds a dataloader')


class _SplitEvaluation:
    """Shared logic of the val and test loops: one dataloader and one
    evaluator per split; metrics prefixed with the split name."""

    def __init__(self, runner, dataloader: Union[dict, DataLoader],
                 evaluator: Union[dict, list, Evaluator]):
        if isinstance(dataloader, dict) and 'dataset' not in dataloader:
            split_cfgs = dataloader
        else:
            split_cfgs = {'': dataloader}
        if not split_cfgs:
            raise ConfigError('no evaluation splits configured')
        self.dataloaders: Dict[str, DataLoader] = {}
        self.evaluators: Dict[str, Evaluator] = {}
        for name, cfg in split_cfgs.items():
            loader = _SplitDataloader(runner, cfg).dataloader
            ev = evaluator if isinstance(evaluator, Evaluator) and \
                len(split_cfgs) == 1 else runner.build_evaluator(
                    copy.deepcopy(evaluator))
            ev.dataset_meta = getattr(loader.dataset, 'metainfo', None)
            self.dataloaders[name] = loader
            self.evaluators[name] = ev

    @property
    def first_dataloader(self) -> DataLoader:
        return next(iter(self.dataloaders.values()))

    def evaluate(self, loop: BaseLoop, step: str, hook_prefix: str,
                 fp16: bool) -> dict:
        """Evaluate every split; ``loop.dataloader`` follows the current
        split so that logging counts iterations per split."""
        runner = loop.runner
        model = runner.model
        previous = unwrap_model(model).classnames
        previous_template = unwrap_model(model).dataset_template
        metrics: dict = {}
        for name, loader in self.dataloaders.items():
            set_model_classes(model, loader.dataset)
            loop.dataloader, loop.current_split = loader, name
            evaluator = self.evaluators[name]
            for idx, data_batch in enumerate(loader):
                runner.call_hook(f'before_{hook_prefix}_iter', batch_idx=idx,
                                 data_batch=data_batch)
                with autocast(enabled=fp16):
                    outputs = getattr(model, step)(data_batch)
                evaluator.process(data_samples=outputs, data_batch=data_batch)
                runner.call_hook(f'after_{hook_prefix}_iter', batch_idx=idx,
                                 data_batch=data_batch, outputs=outputs)
            split_metrics = evaluator.evaluate(len(loader.dataset))
            prefix = f'{name}/' if name else ''
            metrics.update({prefix + k: v for k, v in split_metrics.items()})
        if BASE_KEY in metrics and NEW_KEY in metrics:
            metrics['harmonic_mean'] = harmonic_mean(metrics[BASE_KEY],
                                                     metrics[NEW_KEY])
        loop.dataloader, loop.current_split = self.first_dataloader, None
        if previous is not None:
            unwrap_model(model).set_classes(previous, previous_template)
        return metrics


class _MultiSplitLoop(BaseLoop):
    """Evaluation over named splits (see the module docstring).

    Args:
        runner: the runner.
        dataloader: ``dict(split_name=dataloader_cfg, ...)`` or one
            dataloader config.
        evaluator: metric config(s), instantiated once per split.
        fp16: autocast during evaluation.
    """
    stage = ''  # 'val' | 'test': hook names and the model's step method

    def __init__(self, runner, dataloader, evaluator, fp16: bool = False):
        self._splits = _SplitEvaluation(runner, dataloader, evaluator)
        super().__init__(runner, self._splits.first_dataloader)
        self.evaluator = next(iter(self._splits.evaluators.values()))
        self.fp16 = fp16
        #: the split being evaluated ('' for an unnamed one), None between
        #: evaluations (hooks read it: e.g. tools/test.py --show-dir)
        self.current_split: Optional[str] = None

    def split_classes(self) -> Dict[str, tuple]:
        """``{split name: class names}`` of the evaluated splits."""
        return {name: tuple((getattr(loader.dataset, 'metainfo', None)
                             or {}).get('classes') or ())
                for name, loader in self._splits.dataloaders.items()}

    def split_evaluators(self) -> Dict[str, Evaluator]:
        """``{split name: its evaluator}`` (one per split)."""
        return dict(self._splits.evaluators)

    def run(self) -> dict:
        self.runner.call_hook(f'before_{self.stage}')
        self.runner.call_hook(f'before_{self.stage}_epoch')
        self.runner.model.eval()
        with torch.no_grad():
            metrics = self._splits.evaluate(self, f'{self.stage}_step',
                                            self.stage, self.fp16)
        self.runner.call_hook(f'after_{self.stage}_epoch', metrics=metrics)
        self.runner.call_hook(f'after_{self.stage}')
        return metrics


@LOOPS.register_module()
class MultiSplitValLoop(_MultiSplitLoop):
    """Validation over named splits; ``base``/``new`` add the harmonic
    mean. Arguments: see :class:`_MultiSplitLoop`."""
    stage = 'val'


@LOOPS.register_module()
class MultiSplitTestLoop(_MultiSplitLoop):
    """Test over named splits; same arguments as :class:`MultiSplitValLoop`."""
    stage = 'test'
