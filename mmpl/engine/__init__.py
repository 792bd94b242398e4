from .checkpoint import (from_plain_data, register_checkpoint_safe_globals,
                         to_plain_data)
from .distributed import (CPUDistributedDataParallel,
                          PromptCLIPFullyShardedDataParallel, any_process,
                          build_runner, finish_launch, prepare_launch,
                          run_stage)
from .hooks import (ClassNamesHook, NaNGuardHook, PlainCheckpointHook,
                    RunResultsHook, run_identity)
from .schedulers import ConstantWarmupCosineLR
from .loops import (MultiSplitTestLoop, MultiSplitValLoop, set_model_classes,
                    unwrap_model)

register_checkpoint_safe_globals()

__all__ = [
    'ClassNamesHook', 'NaNGuardHook', 'PlainCheckpointHook', 'RunResultsHook',
    'run_identity',
    'ConstantWarmupCosineLR',
    'MultiSplitValLoop', 'MultiSplitTestLoop',
    'set_model_classes', 'unwrap_model', 'register_checkpoint_safe_globals',
    'to_plain_data', 'from_plain_data', 'CPUDistributedDataParallel',
    'PromptCLIPFullyShardedDataParallel', 'any_process', 'build_runner',
    'finish_launch', 'prepare_launch', 'run_stage'
]
