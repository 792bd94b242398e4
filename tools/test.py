"""Evaluate a checkpoint with a config's test splits.

    python tools/test.py configs/coop/coop_vitb16_b2n_eurosat.py \
        work_dirs/coop_vitb16_b2n_eurosat/epoch_50.pth

    bash tools/dist_test.sh CONFIG CHECKPOINT 8

Base-to-new configs print base/accuracy/top1, new/accuracy/top1 and
harmonic_mean; other protocols <dataset>/accuracy/top1. Every test sample
counts once, whatever the number of processes.
"""
import json
import sys

from mmpl.utils.cli import (add_run_options, parse_run_args, run_config_kwargs,
                            run_parser)


def parse_args(argv=None):
    parser = run_parser('Test a prompt learner', 'test config file path')
    parser.add_argument(
        'checkpoint', nargs='?',
        help='checkpoint file; omit for methods with nothing learned '
        '(ZeroShotCLIP) or to evaluate the initialisation')
    add_run_options(parser, work_dir_help='where logs go')
    parser.add_argument('--out', help='write the metrics to this new JSON '
                        'file (never over an existing one)')
    return parse_run_args(parser, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmpl.utils.errors import run_cli
    return run_cli(_test, args)


def _test(args) -> int:
    from mmpl import apis
    from mmpl.utils.io import check_new_file
    if args.out:
        check_new_file(args.out, '--out')
    cfg = apis.load_config(args.config, **run_config_kwargs(args))
    # None on ranks other than 0, and with --check-only
    metrics = apis.test(cfg, args.checkpoint, check_only=args.check_only)
    if args.out and metrics is not None:
        with open(args.out, 'x') as f:
            json.dump(metrics, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
