"""Train a prompt-learning config (mmpretrain-style entry point).

    python tools/train.py configs/coop/coop_vitb16_b2n_eurosat.py
    python tools/train.py CONFIG --data-root data/eurosat --seed 2
    bash tools/dist_train.sh CONFIG 8      # 8 GPUs; on CPU: gloo processes

A config with ``runner_type = 'FlexibleRunner'`` and a ``strategy`` (e.g.
FSDP) is built by mmengine's RUNNERS registry, as in mmpretrain.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a prompt learner')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest one in '
        'the work dir when no path is given')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (GPU)')
    parser.add_argument('--seed', type=int,
                        help='run seed: sets randomness.seed and the '
                        'few-shot sampling seed (benchmark seeds: 1, 2, 3)')
    parser.add_argument('--data-root',
                        help='dataset folder for every dataset of the config')
    parser.add_argument('--no-validate', action='store_true',
                        help='skip the evaluation after training')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. '
                        'train_cfg.max_epochs=5 model.clip.pretrained=PATH')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args):
    """Apply the command-line options to the config."""
    from mmpl.utils import set_data_root, set_runtime_seed
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if getattr(args, 'data_root', None):
        set_data_root(cfg, args.data_root)
    if getattr(args, 'seed', None) is not None:
        set_runtime_seed(cfg, args.seed)
    if getattr(args, 'amp', False):
        import torch
        if not torch.cuda.is_available():
            raise ValueError('--amp needs a CUDA GPU (mmengine\'s '
                             'AmpOptimWrapper); train without --amp on CPU')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if getattr(args, 'no_validate', False):
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if getattr(args, 'resume', None) == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif getattr(args, 'resume', None) is not None:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main(argv=None):
    args = parse_args(argv)
    from mmpl.utils import is_user_error, raised_in, user_error_message
    try:
        if not osp.isfile(args.config):
            raise FileNotFoundError(f'config not found: {args.config!r}')
        cfg = merge_args(Config.fromfile(args.config), args)
        from mmpl.apis import run_stage
        run_stage(cfg, 'train')
    except Exception as exc:  # one line for bad input, traceback for bugs
        if not (is_user_error(exc) or raised_in(exc, __file__)):
            raise
        print(f'mmpl: error: {user_error_message(exc)}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
