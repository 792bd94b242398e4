"""Entry points to run mmpl: what the tools call."""
from .launch import build_runner, finish_launch, prepare_launch, run_stage
from .run import QuietConfig, load_config, smoke, test, train

__all__ = [
    'build_runner', 'finish_launch', 'prepare_launch', 'run_stage',
    'QuietConfig', 'load_config', 'smoke', 'test', 'train'
]
