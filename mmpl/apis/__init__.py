"""Entry points to run mmpl: what the tools call."""
from .launch import finish_launch, prepare_launch, run_stage

__all__ = ['finish_launch', 'prepare_launch', 'run_stage']
