"""Gaussian prompt aggregation (GPA) over training epochs.

From PromptSRC (Khattak et al., ICCV 2023, "Self-regulating Prompts"): the
prompts of the epochs are ensembled with Gaussian weights instead of
keeping only the last epoch's,

    P_GPA = sum_e w_e P_e / sum_e w_e,   w_e = N(e; mu, sigma^2),

e = 1 .. E the epoch after which P_e is read (PromptSRC's base-to-new
setting: E = 20, mu = 15, sigma = 1). After the last epoch the model holds
P_GPA, before that epoch's validation and checkpoint (so the saved
checkpoint and the final evaluation use the aggregate). The aggregate
(the weighted running sum and the weight total) travels in checkpoints
under ``'gpa'``, so a resumed run aggregates as an uninterrupted one.
Only trainable parameters (the prompts) are aggregated: the official
PromptSRC trainer averages every state-dict entry, but the frozen ones are
the same every epoch, so their average is themselves. The ``promptsrc``
configs turn it on (N(15, 1) over 20 epochs, as the official trainer);
whether DGPrompt uses GPA is not known to the project (its configs leave it
off).
"""
import math
from typing import Dict, Optional

import torch
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from torch import Tensor

from ...utils.errors import ConfigError
from ..utils import unwrap_model


def gaussian_weight(epoch: int, mean: float, std: float) -> float:
    """N(epoch; mean, std^2): PromptSRC's per-epoch weight (epochs from 1)."""
    return math.exp(-0.5 * ((epoch - mean) / std)**2) / (
        std * math.sqrt(2 * math.pi))


@HOOKS.register_module()
class GaussianPromptAggregationHook(Hook):
    """Gaussian-weighted average of the prompts over epochs (PromptSRC).

    Args:
        mean: mu, in epochs counted from 1 [None: 0.75 * max_epochs, which
            is PromptSRC's 15 of 20].
        std: sigma in epochs [1].
    """
    priority = 'ABOVE_NORMAL'  # before the checkpoint and the validation

    def __init__(self, mean: Optional[float] = None, std: float = 1.0):
        if std is None or not std > 0:
            raise ConfigError(f'GaussianPromptAggregationHook: std must be > '
                              f'0, got {std!r}')
        self.mean = mean
        self.std = float(std)
        self.total = 0.0
        self.sums: Dict[str, Tensor] = {}

    def _mean(self, runner) -> float:
        return float(self.mean if self.mean is not None
                     else 0.75 * runner.max_epochs)

    def after_train_epoch(self, runner) -> None:
        epoch = runner.epoch + 1  # epochs done, from 1 (runner.epoch: 0-based)
        model = unwrap_model(runner.model)
        w = gaussian_weight(epoch, self._mean(runner), self.std)
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        with torch.no_grad():
            for name, p in params.items():
                acc = self.sums.get(name)
                # float64: far-off epochs' weights (e^-98 for 14 sigma)
                # must not vanish when every weight is that small
                value = p.detach().double() * w
                self.sums[name] = value if acc is None else acc + value
        self.total += w
        if epoch >= runner.max_epochs:
            self.apply(params)

    def apply(self, params: Dict[str, Tensor]) -> None:
        """Write P_GPA into the parameters."""
        if not self.total > 0:
            raise ConfigError(
                'GaussianPromptAggregationHook: all epoch weights are zero '
                f'(mean={self.mean}, std={self.std}); put the mean inside '
                'the training epochs or widen std')
        with torch.no_grad():
            for name, p in params.items():
                p.copy_((self.sums[name] / self.total).to(p.dtype))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['gpa'] = dict(total=self.total, sums=dict(self.sums))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('gpa')
        if state and runner._resume:
            self.total = float(state['total'])
            self.sums = dict(state['sums'])
