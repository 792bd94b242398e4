"""Leaf helpers: nothing here imports the rest of mmpl."""
from .config_tools import (iter_dataset_cfgs, replace_clip, replace_readers,
                           set_data_root, set_fewshot_seed, set_image_size,
                           set_loader_options, set_runtime_seed)
from .errors import (CheckpointError, CLIPBuildError, ConfigError, DataError,
                     ExistingFileError, LaunchError, MissingFileError,
                     MMPLError, TrainingStopped, run_cli, user_error_message)

__all__ = [
    'iter_dataset_cfgs', 'replace_clip', 'replace_readers', 'set_data_root',
    'set_fewshot_seed', 'set_image_size', 'set_loader_options',
    'set_runtime_seed', 'MMPLError', 'ConfigError', 'DataError',
    'MissingFileError', 'ExistingFileError', 'CheckpointError',
    'CLIPBuildError', 'LaunchError', 'TrainingStopped', 'run_cli',
    'user_error_message'
]
