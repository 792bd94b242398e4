"""Evaluate a checkpoint with a config's test splits.

    python tools/test.py configs/coop/coop_vitb16_b2n_eurosat.py \
        work_dirs/coop_vitb16_b2n_eurosat/epoch_50.pth

    bash tools/dist_test.sh CONFIG CHECKPOINT 8

Base-to-new configs print base/accuracy/top1, new/accuracy/top1 and
harmonic_mean; other protocols <dataset>/accuracy/top1. Every test sample
counts once, whatever the number of processes.
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a prompt learner')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint', nargs='?',
        help='checkpoint file; omit for methods with nothing learned '
        '(ZeroShotCLIP) or to evaluate the initialisation')
    parser.add_argument('--work-dir', help='where logs go')
    parser.add_argument('--data-root',
                        help='dataset folder for every dataset of the config')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmpl.utils import is_user_error, set_data_root, user_error_message
    try:
        if args.checkpoint and not osp.isfile(args.checkpoint):
            raise FileNotFoundError(
                f'checkpoint not found: {args.checkpoint!r}')
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        cfg.launcher = args.launcher
        cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
            './work_dirs', osp.splitext(osp.basename(args.config))[0])
        if args.data_root:
            set_data_root(cfg, args.data_root)
        cfg.load_from = args.checkpoint
        from mmpl.apis import run_stage
        metrics = run_stage(cfg, 'test')  # None on ranks other than 0
    except Exception as exc:
        if not is_user_error(exc) and not isinstance(exc, FileNotFoundError):
            raise
        print(f'mmpl: error: {user_error_message(exc)}', file=sys.stderr)
        return 2
    if args.out and metrics is not None:
        with open(args.out, 'w') as f:
            json.dump(metrics, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
