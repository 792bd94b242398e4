"""ClassNamesHook: the model's class names in step with the training
data."""
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ..utils import set_model_classes


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
