"""Evaluate a checkpoint with a config's test splits.

    python tools/test.py configs/coop/coop_vitb16_b2n_eurosat.py \
        work_dirs/coop_vitb16_b2n_eurosat/epoch_50.pth

    bash tools/dist_test.sh CONFIG CHECKPOINT 8

Base-to-new configs print base/accuracy/top1, new/accuracy/top1 and
harmonic_mean; other protocols <dataset>/accuracy/top1. Every test sample
counts once, whatever the number of processes.

As in mmpretrain: ``--out FILE`` writes the metrics (``--out-item
metrics``, mmpl's default) or every prediction (``--out-item pred``: per
split, its class names and each image's true class and top-k), as JSON;
``--show-dir DIR`` draws ``--show-num`` images per split with the true and
the top-k predicted class names into ``DIR/<split>/``.
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
    parser.add_argument('--out', help='write the metrics (or, with '
                        '--out-item pred, the predictions) to this new JSON '
                        'file (never over an existing one)')
    parser.add_argument(
        '--out-item', choices=['metrics', 'pred'],
        help="what --out holds: 'metrics' [default] or 'pred' (every test "
        "image's prediction per split: true class, top-5 classes and "
        'scores)')
    parser.add_argument(
        '--show-dir',
        help='draw test images with their true and predicted classes into '
        'DIR/<split>/ (mmpretrain\'s UniversalVisualizer)')
    parser.add_argument('--show-num', type=int, default=16,
                        help='images drawn per split, spread over it [16]')
    parser.add_argument('--show-topk', type=int, default=3,
                        help='predicted classes written per image [3]')
    return parse_run_args(parser, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmpl.utils.errors import run_cli
    return run_cli(_test, args)


def _test(args) -> int:
    from mmpl import apis
    from mmpl.utils.errors import ConfigError
    from mmpl.utils.io import check_new_file
    if args.out_item and not args.out:
        raise ConfigError(f'--out-item {args.out_item} says what --out '
                          'writes, and --out is not given. Add --out '
                          'FILE.json')
    if args.out:
        check_new_file(args.out, '--out')
    cfg = apis.load_config(args.config, **run_config_kwargs(args))
    if args.show_dir:
        from mmpl.apis.analysis import enable_show_dir
        enable_show_dir(cfg, args.show_dir, args.show_num, args.show_topk)
    if args.out_item == 'pred':
        from mmpl.apis.analysis import test_predictions
        metrics, splits = test_predictions(cfg, args.checkpoint,
                                           check_only=args.check_only)
        result = None if metrics is None else dict(
            checkpoint=args.checkpoint, metrics=metrics,
            splits={name: s.as_plain() for name, s in splits.items()})
    else:
        # None on ranks other than 0, and with --check-only
        result = apis.test(cfg, args.checkpoint, check_only=args.check_only)
    if args.out and result is not None:
        with open(args.out, 'x') as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
