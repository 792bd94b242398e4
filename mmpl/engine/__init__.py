from .checkpoint import (from_plain_data, register_checkpoint_safe_globals,
                         to_plain_data)
from .hooks import (ClassNamesHook, GaussianPromptAggregationHook,
                    NaNGuardHook, PlainCheckpointHook, RunResultsHook,
                    SplitVisualizationHook)
from .loops import MultiSplitTestLoop, MultiSplitValLoop
from .model_wrappers import (CPUDistributedDataParallel,
                             PromptCLIPFullyShardedDataParallel)
from .schedulers import ConstantWarmupCosineLR
from .utils import (any_process, run_identity, set_model_classes, split_label,
                    unwrap_model)

register_checkpoint_safe_globals()

__all__ = [
    'ClassNamesHook', 'NaNGuardHook', 'PlainCheckpointHook', 'RunResultsHook',
    'any_process', 'run_identity',
    'ConstantWarmupCosineLR', 'GaussianPromptAggregationHook',
    'MultiSplitValLoop', 'MultiSplitTestLoop',
    'set_model_classes', 'unwrap_model', 'register_checkpoint_safe_globals',
    'to_plain_data', 'from_plain_data', 'CPUDistributedDataParallel',
    'PromptCLIPFullyShardedDataParallel', 'SplitVisualizationHook',
    'split_label'
]
