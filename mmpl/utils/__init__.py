from .config_tools import (iter_dataset_cfgs, iter_loader_cfgs, replace_clip,
                           replace_readers, set_data_root, set_fewshot_seed,
                           set_image_size, set_loader_options,
                           set_runtime_seed)
from .user_errors import is_user_error, raised_in, user_error_message

__all__ = [
    'iter_dataset_cfgs', 'iter_loader_cfgs', 'replace_clip', 'replace_readers',
    'set_data_root', 'set_fewshot_seed', 'set_image_size',
    'set_loader_options', 'set_runtime_seed', 'is_user_error', 'raised_in',
    'user_error_message'
]
