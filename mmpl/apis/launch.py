"""Multi-process runs: torchrun/slurm on GPUs (NCCL) and on CPU (gloo).

On GPUs nothing changes: mmengine initialises NCCL and wraps the model in
``MMDistributedDataParallel``. Without a GPU (or with
``CUDA_VISIBLE_DEVICES=-1``) mmengine's own set-up fails
(``torch.cuda.set_device``, then DDP's ``device_ids``), so
:func:`prepare_launch` initialises a gloo process group itself (mmengine
then skips its own) and selects :class:`CPUDistributedDataParallel`.
:func:`run_stage` builds the runner (``runner_type`` selects e.g.
mmengine's ``FlexibleRunner``), runs one stage and tears the process group
down in order: a gloo process that exits with a live process group aborts
about every second time with ``terminate called without an active
exception``.

    from mmpl.apis import run_stage
    run_stage(cfg, 'train')            # tools/train.py
    metrics = run_stage(cfg, 'test')   # tools/test.py: metrics on rank 0
"""
import datetime
import gc
import logging
import os
from typing import Callable, Optional

import torch
import torch.distributed as torch_dist
from mmengine.dist import get_rank
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..engine.model_wrappers import CPUDistributedDataParallel
from ..utils.errors import LaunchError
from ..utils.quiet import ConsoleFilter

#: strategies of mmengine's FlexibleRunner that shard or offload with CUDA
GPU_STRATEGIES = ('FSDPStrategy', 'DeepSpeedStrategy', 'ColossalAIStrategy')


def _strategy_type(cfg) -> Optional[str]:
    strategy = cfg.get('strategy')
    if cfg.get('runner_type') != 'FlexibleRunner' or not strategy:
        return None
    kind = strategy.get('type') if isinstance(strategy, dict) else strategy
    return kind if isinstance(kind, str) else type(kind).__name__


def _use_cpu_wrapper(cfg) -> None:
    """Select :class:`CPUDistributedDataParallel` where mmengine would use
    ``MMDistributedDataParallel`` (Runner: ``model_wrapper_cfg``;
    FlexibleRunner: ``strategy.model_wrapper``)."""
    cpu = CPUDistributedDataParallel.__name__
    if cfg.get('runner_type') == 'FlexibleRunner':
        strategy = cfg.get('strategy') or dict(type='DDPStrategy')
        if strategy.get('type') == 'DDPStrategy':
            wrapper = strategy.get('model_wrapper') or dict(
                broadcast_buffers=False)
            if wrapper.get('type', 'MMDistributedDataParallel') == \
                    'MMDistributedDataParallel':
                strategy['model_wrapper'] = dict(wrapper, type=cpu)
        cfg.strategy = strategy
        return
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    if wrapper.get('type', 'MMDistributedDataParallel') == \
            'MMDistributedDataParallel':
        cfg.model_wrapper_cfg = dict(wrapper, type=cpu)


def _check_strategy(cfg, has_gpu: bool) -> None:
    """FlexibleRunner strategies that need CUDA and a process group."""
    strategy = _strategy_type(cfg)
    if strategy not in GPU_STRATEGIES:
        return
    if not has_gpu:
        raise LaunchError(
            f'{strategy} (runner_type=FlexibleRunner) needs CUDA GPUs and '
            'none is visible; run it on GPUs with tools/dist_train.sh '
            'CONFIG N, or drop runner_type/strategy from the config to '
            'train with the default Runner')
    if cfg.get('launcher', 'none') == 'none':
        raise LaunchError(
            f'{strategy} needs a process group, also on one GPU: start it '
            'with tools/dist_train.sh CONFIG N (or --launcher pytorch/slurm)')


def _init_gloo(cfg) -> None:
    """The process group of a torchrun-started CPU process."""
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise LaunchError(
            '--launcher pytorch expects the environment torchrun sets '
            f'({", ".join(missing)} missing): start the processes with '
            'tools/dist_train.sh CONFIG N or tools/dist_test.sh')
    dist_cfg = (cfg.get('env_cfg') or {}).get('dist_cfg') or {}
    kwargs = {}
    if dist_cfg.get('timeout') is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])
    torch_dist.init_process_group(backend='gloo', **kwargs)


def prepare_launch(cfg) -> None:
    """Check the runner/strategy against the hardware and, for a
    multi-process run without a GPU, initialise gloo and select the CPU DDP
    wrapper. Call once per process, before building the runner."""
    launcher = cfg.get('launcher', 'none')
    has_gpu = torch.cuda.is_available()
    _check_strategy(cfg, has_gpu)
    if launcher == 'none' or has_gpu:
        return  # single process, or mmengine's own NCCL set-up
    if launcher != 'pytorch':
        raise LaunchError(
            f'--launcher {launcher} needs GPUs; on CPU start processes with '
            'torchrun: tools/dist_train.sh CONFIG N (--launcher pytorch)')
    if not torch_dist.is_initialized():
        _init_gloo(cfg)
    _use_cpu_wrapper(cfg)


class QuietRunner(Runner):
    """mmengine's Runner whose console shows progress and results: the
    environment report, config dump and hook table go to the log file in
    the work dir only (:class:`~mmpl.utils.quiet.ConsoleFilter`).
    ``console_level``: the least level the console shows (a subclass with
    ``logging.WARNING`` leaves progress and results to the log file)."""
    console_level = logging.NOTSET

    def build_logger(self, *args, **kwargs):
        logger = super().build_logger(*args, **kwargs)
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler:
                handler.addFilter(ConsoleFilter())
                handler.setLevel(max(handler.level, self.console_level))
        return logger


class FileLogRunner(QuietRunner):
    """Warnings and errors on the console; progress and results in the log
    file only (for tools that print one line per run, e.g. the
    yardstick)."""
    console_level = logging.WARNING


def build_runner(cfg):
    """:class:`QuietRunner` (``Runner.from_cfg``), or the registered runner
    named by ``cfg.runner_type`` (e.g. ``'FlexibleRunner'``), as
    mmpretrain's tools/train.py does."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return QuietRunner.from_cfg(cfg)


def finish_launch(clean: bool = True) -> None:
    """Destroy the process group, if any: after a barrier when every
    process finished (``clean``), at once after an error (a barrier would
    wait for processes that may be gone)."""
    if not torch_dist.is_initialized():
        return
    if clean:
        torch_dist.barrier()
    torch_dist.destroy_process_group()


def run_stage(cfg, stage: str,
              before: Optional[Callable] = None) -> Optional[dict]:
    """Prepare the launch, build the runner for ``cfg``, run ``stage``
    (``'train'`` or ``'test'``) and tear down cleanly: the runner (and its
    DDP reducer) is released before the process group is destroyed.
    ``before(runner)`` runs once the runner is built (checks against the
    built model).

    Returns:
        The test metrics on the main process; None on the other processes
        and for ``'train'``.
    """
    if stage not in ('train', 'test'):
        raise ValueError(f"stage must be 'train' or 'test', got {stage!r}")
    prepare_launch(cfg)
    try:
        runner = build_runner(cfg)
        if before is not None:
            before(runner)
        if stage == 'train':
            runner.train()
            result = None
        else:
            result = runner.test()
        main = get_rank() == 0
        del runner
        gc.collect()  # the runner, its loops and hooks form cycles
    except BaseException:
        finish_launch(clean=False)
        raise
    finish_launch()
    return result if main else None
