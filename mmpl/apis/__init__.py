"""Entry points to run mmpl (what the tools call) and to use a trained
prompt (:class:`PromptInferencer`)."""
from .inference import PromptInferencer, list_images, read_class_names
from .launch import build_runner, finish_launch, prepare_launch, run_stage
from .run import QuietConfig, load_config, smoke, test, train

__all__ = [
    'build_runner', 'finish_launch', 'prepare_launch', 'run_stage',
    'QuietConfig', 'load_config', 'smoke', 'test', 'train',
    'PromptInferencer', 'list_images', 'read_class_names'
]
