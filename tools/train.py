"""Train a prompt-learning config (mmpretrain-style entry point).

    python tools/train.py configs/coop/coop_vitb16_b2n_eurosat.py
    python tools/train.py CONFIG --data-root data/eurosat --seed 2
    bash tools/dist_train.sh CONFIG 8      # 8 GPUs; on CPU: gloo processes

A config with ``runner_type = 'FlexibleRunner'`` and a ``strategy`` (e.g.
FSDP) is built by mmengine's RUNNERS registry, as in mmpretrain.
"""
import argparse
import os
import sys

from mmengine.config import DictAction


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


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmpl.utils.errors import run_cli
    return run_cli(_train, args)


def _train(args) -> int:
    from mmpl import apis
    cfg = apis.load_config(args.config, args.cfg_options, args.work_dir,
                           args.data_root, args.seed, args.launcher)
    apis.train(cfg, resume=args.resume, amp=args.amp,
               validate=not args.no_validate)
    return 0


if __name__ == '__main__':
    sys.exit(main())
