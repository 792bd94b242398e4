from .checkpoint import (from_plain_data, register_checkpoint_safe_globals,
                         to_plain_data)
from .gpa import GaussianPromptAggregationHook
from .hooks import (ClassNamesHook, NaNGuardHook, PlainCheckpointHook,
                    RunResultsHook, any_process, run_identity)
from .loops import (MultiSplitTestLoop, MultiSplitValLoop, set_model_classes,
                    unwrap_model)
from .model_wrappers import (CPUDistributedDataParallel,
                             PromptCLIPFullyShardedDataParallel)
from .schedulers import ConstantWarmupCosineLR
from .visualization import SplitVisualizationHook, split_label

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
