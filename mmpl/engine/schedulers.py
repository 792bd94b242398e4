"""The learning-rate schedule of the CoOp benchmark, as one scheduler.

CoOp/CoCoOp/MaPLe (Dassl ``ConstantWarmupScheduler`` around
``CosineAnnealingLR(T_max=max_epoch)``): epoch 0 runs at a constant 1e-5,
then epoch ``e >= 1`` runs at ``lr * (1 + cos(pi * (e - 1) / E)) / 2``.
In mmengine terms this is ``ConstantLR(factor=1e-5/lr, begin=0, end=2)``
followed by ``CosineAnnealingLR(T_max=E, begin=1, end=E)``; as one scheduler
it follows ``optim_wrapper.optimizer.lr`` and ``train_cfg.max_epochs`` when
either is overridden (``--cfg-options``), which the two-scheduler form
silently does not.
"""
import math
from typing import Optional

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmpretrain.registry import PARAM_SCHEDULERS

from ..utils.errors import ConfigError


@PARAM_SCHEDULERS.register_module()
class ConstantWarmupCosineLR(LRSchedulerMixin, _ParamScheduler):
    """Constant warm-up epochs, then cosine annealing per epoch.

    Args:
        optimizer: wrapped optimizer.
        warmup_lr: constant lr of the warm-up epochs [1e-5].
        warmup_epochs: number of warm-up epochs [1].
        T_max: cosine period in epochs; None = ``end`` (the number of
            training epochs, filled in by the runner).
        eta_min: final lr [0].
        begin, end: epochs where the scheduler is active; ``end`` defaults
            to ``train_cfg.max_epochs``.
    """

    def __init__(self,
                 optimizer,
                 warmup_lr: float = 1e-5,
                 warmup_epochs: int = 1,
                 T_max: Optional[int] = None,
                 eta_min: float = 0.0,
                 begin: int = 0,
                 end: int = INF,
                 last_step: int = -1,
                 by_epoch: bool = True,
                 verbose: bool = False):
        if not by_epoch:
            raise ConfigError('ConstantWarmupCosineLR is defined per epoch '
                              '(by_epoch=True), as in the CoOp benchmark')
        if warmup_epochs < 0:
            raise ConfigError(
                f'warmup_epochs must be >= 0, got {warmup_epochs}')
        self.warmup_lr = warmup_lr
        self.warmup_epochs = warmup_epochs
        self.T_max = T_max or (end - begin)
        self.eta_min = eta_min
        super().__init__(optimizer, begin=begin, end=end,
                         last_step=last_step, by_epoch=by_epoch,
                         verbose=verbose)

    def lr_at(self, epoch: int, base_lr: float) -> float:
        """Closed form: the lr of (0-based) ``epoch``."""
        if epoch < self.warmup_epochs:
            return self.warmup_lr
        progress = (epoch - self.warmup_epochs) / self.T_max
        return self.eta_min + (base_lr - self.eta_min) * (
            1 + math.cos(math.pi * progress)) / 2

    def _get_value(self):
        return [self.lr_at(self.last_step, base) for base in self.base_values]
