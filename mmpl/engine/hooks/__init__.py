"""mmpl's hooks, one per file (as mmengine's and mmpretrain's)."""
from .class_names_hook import ClassNamesHook
from .gpa_hook import GaussianPromptAggregationHook, gaussian_weight
from .nan_guard_hook import NaNGuardHook
from .plain_checkpoint_hook import PlainCheckpointHook
from .run_results_hook import RunResultsHook
from .visualization_hook import SplitVisualizationHook

__all__ = [
    'ClassNamesHook', 'GaussianPromptAggregationHook', 'NaNGuardHook',
    'PlainCheckpointHook', 'RunResultsHook', 'SplitVisualizationHook',
    'gaussian_weight'
]
