"""Run a config: the one entry that every tool shares.

``tools/train.py``, ``tools/test.py`` and ``tools/run_benchmark.py`` are
argparse shells over these functions; tests call them directly.

    from mmpl.apis import load_config, test, train
    cfg = load_config('configs/coop/coop_vitb16_b2n_eurosat.py',
                      data_root='data/eurosat', seed=1)
    train(cfg)
    metrics = test(load_config(...), 'work_dirs/.../epoch_50.pth')
"""
import os.path as osp
import sys
import uuid
from typing import Callable, Optional, Union

from mmengine.config import Config

from ..utils.config_file import read_config
from ..utils.config_tools import (set_data_root, set_loader_options,
                                  set_runtime_seed)
from ..utils.errors import ConfigError
from . import preflight
from .launch import run_stage

#: the mixed-precision dtypes of ``train(amp=...)`` / ``--amp-dtype``
AMP_DTYPES = ('float16', 'bfloat16')


class QuietConfig(Config):
    """A Config whose text is not run through yapf: the runner logs and
    dumps its config several times, which costs seconds per run and says
    nothing in an offline or in-process check."""

    @property
    def pretty_text(self) -> str:
        return '# mmpl: unformatted config\n' + repr(self._cfg_dict.to_dict())


def load_config(path: str,
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                data_root: Optional[str] = None,
                seed: Optional[int] = None,
                launcher: str = 'none',
                quiet: bool = False,
                unique_name: Optional[str] = None,
                persistent_workers: Optional[bool] = None) -> Config:
    """Load ``path`` and apply the options every tool shares.

    Args:
        path: the config file.
        cfg_options: ``--cfg-options`` (dotted keys), merged first.
        work_dir: logs and checkpoints; default: the config's
            ``work_dir``, else ``./work_dirs/<config name>``.
        data_root: the folder of every dataset of the config.
        seed: run seed: ``randomness.seed`` and every few-shot sampling
            seed (the benchmark seeds are 1, 2, 3).
        launcher: mmengine's launcher (``none``, ``pytorch``, ``slurm``,
            ``mpi``).
        quiet: skip yapf when the config is logged (:class:`QuietConfig`).
        unique_name: prefix of a fresh ``experiment_name``: mmengine keys
            its logger and visualizer instances on it, so several runs in
            one process need one each.
        persistent_workers: set on every dataloader (False:
            ``--no-persistent-workers``); None keeps the config's.
    """
    preflight.check_seed(seed)
    cfg = read_config(path)
    if quiet:
        cfg = QuietConfig(cfg.to_dict(), filename=cfg.filename)
    if cfg_options:
        preflight.check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    if data_root:
        set_data_root(cfg, data_root)
    if seed is not None:
        set_runtime_seed(cfg, seed)
    if persistent_workers is not None:
        set_loader_options(cfg, persistent_workers=persistent_workers)
    if unique_name:
        cfg.experiment_name = f'{unique_name}_{uuid.uuid4().hex[:12]}'
    preflight.check_seed((cfg.get('randomness') or {}).get('seed'),
                         'randomness.seed')
    preflight.check_loaders(cfg)
    preflight.check_schedule(cfg)
    preflight.check_input_size(cfg)
    return cfg


def train(cfg: Config,
          resume: Optional[str] = None,
          amp: Union[bool, str] = False,
          validate: bool = True,
          check_only: bool = False,
          auto_scale_lr: bool = False) -> None:
    """Train ``cfg`` (one process, or this process's part of a
    distributed run).

    Args:
        resume: ``'auto'`` (the latest checkpoint of the work dir) or a
            checkpoint path; None trains from the start.
        amp: automatic mixed precision (mmengine's ``AmpOptimWrapper``,
            CUDA only): True or ``'float16'`` (dynamic loss scaling),
            ``'bfloat16'``; False trains in fp32.
        validate: evaluate after training (the config's val splits).
        check_only: stop after the checks, before the runner is built.
        auto_scale_lr: scale the lr by the batch size over the config's
            ``auto_scale_lr.base_batch_size`` (mmengine's linear scaling,
            mmpretrain's ``--auto-scale-lr``).
    """
    if auto_scale_lr:
        enable_auto_scale_lr(cfg)
    if amp:
        enable_amp(cfg, 'float16' if amp is True else amp)
    if not validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    preflight.check_work_dir(cfg.work_dir)
    preflight.check_data_roots(cfg)
    if resume == 'auto':
        resume = preflight.find_resume_checkpoint(cfg.work_dir)
    if resume is not None:
        preflight.read_checkpoint(resume, 'resume checkpoint')
        cfg.resume, cfg.load_from = True, resume
        inexact = preflight.resume_inexact_reason(cfg)
        if inexact:
            print(f'mmpl: warning: {inexact}', file=sys.stderr)
    if not check_only:
        run_stage(cfg, 'train')


def enable_amp(cfg: Config, dtype: str = 'float16') -> None:
    """Train ``cfg`` with mmengine's ``AmpOptimWrapper`` in ``dtype``
    (``float16``: dynamic loss scaling; ``bfloat16``), on a CUDA GPU. The
    dtype is always written: mmengine's default asks torch for the autocast
    dtype through an API that newer torch versions deprecate."""
    from ..utils.checks import check_choice
    check_choice('--amp-dtype', dtype, AMP_DTYPES)
    import torch
    if not torch.cuda.is_available():
        raise ConfigError("--amp needs a CUDA GPU (mmengine's "
                          'AmpOptimWrapper); train without --amp on CPU')
    if dtype == 'bfloat16' and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f'--amp-dtype bfloat16: {torch.cuda.get_device_name()} does not '
            'support bfloat16. Use --amp (float16)')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.dtype = dtype
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def enable_auto_scale_lr(cfg: Config) -> None:
    """Turn on mmengine's linear lr scaling, as mmpretrain's
    ``--auto-scale-lr``: the runner multiplies the optimizer's lr by
    (processes x ``train_dataloader.batch_size``) / ``base_batch_size``
    before the schedulers read it; one line when the config does not say
    which batch size its lr is meant for."""
    scale = cfg.get('auto_scale_lr') or {}
    base = scale.get('base_batch_size')
    if base is None:
        raise ConfigError(
            '--auto-scale-lr: the config has no auto_scale_lr.base_batch_size'
            ' (the batch size its lr is meant for). Add auto_scale_lr = dict('
            'base_batch_size=N) to the config, or train without '
            '--auto-scale-lr')
    if isinstance(base, bool) or not isinstance(base, int) or base < 1:
        raise ConfigError(f'auto_scale_lr.base_batch_size must be an integer '
                          f'>= 1, got {base!r}. Set it to the batch size the '
                          "config's lr is meant for")
    cfg.auto_scale_lr = dict(scale, enable=True)


def test(cfg: Config, checkpoint: Optional[str] = None,
         check_only: bool = False,
         before: Optional[Callable] = None) -> Optional[dict]:
    """Evaluate ``checkpoint`` (None: the model as built, e.g.
    ``ZeroShotCLIP``) on the config's test splits; returns the metrics on
    the main process, None on the others (and with ``check_only``: the
    checks only, before the runner is built). ``before(runner)`` runs once
    the runner is built and the checkpoint checked (e.g. to keep its test
    loop)."""
    preflight.check_work_dir(cfg.work_dir)
    preflight.check_data_roots(cfg)
    ckpt = preflight.read_checkpoint(checkpoint) if checkpoint else None
    if check_only:
        return None

    def check(runner):
        if ckpt is not None:
            preflight.check_checkpoint_fits(runner.model, ckpt, checkpoint)
        if before is not None:
            before(runner)

    cfg.load_from = checkpoint
    return run_stage(cfg, 'test', before=check)
