"""Entry points to run mmpl (what the tools call), to use a trained
prompt (:class:`PromptInferencer`) and to list the method catalogue
(:func:`list_models`, :func:`list_methods`)."""
from .catalogue import MethodRecord, ModelRecord, list_methods, list_models
from .inference import (PromptInferencer, class_names_option, list_images,
                        read_class_names)
from .launch import build_runner, finish_launch, prepare_launch, run_stage
from .run import QuietConfig, load_config, test, train

__all__ = [
    'build_runner', 'finish_launch', 'prepare_launch', 'run_stage',
    'QuietConfig', 'load_config', 'test', 'train',
    'PromptInferencer', 'list_images', 'read_class_names',
    'class_names_option', 'list_models',
    'list_methods', 'ModelRecord', 'MethodRecord'
]
