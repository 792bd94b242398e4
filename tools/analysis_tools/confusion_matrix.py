"""Evaluate a checkpoint and write the confusion matrix of every test split.

    python tools/analysis_tools/confusion_matrix.py \
        configs/coop/coop_vitb16_b2n_eurosat.py work_dirs/coop/epoch_50.pth \
        --out-dir work_dirs/coop/confusion --data-root data/eurosat

Writes ``<out-dir>/<split>.csv`` (counts; rows = true class, columns =
predicted class, both named) and ``<out-dir>/<split>.png`` (mmpretrain's
``ConfusionMatrix.plot``, class names on the axes, the split's top-1 in
the title), e.g. base.png and new.png for a base-to-new config.

mmpretrain's tools/analysis_tools/confusion_matrix.py does not work on
mmpl's base-to-new configs: it reads the class names of one test
dataloader and the metric key ``confusion_matrix/result``, and mmpl
evaluates named splits (``base/confusion_matrix/result``, ...) with their
own class names. Without CHECKPOINT the config's model as built is
evaluated (ZeroShotCLIP configs).
"""
import sys

from mmpl.utils.cli import (add_run_options, parse_run_args, run_config_kwargs,
                            run_parser)


def parse_args(argv=None):
    parser = run_parser('Confusion matrix of every test split',
                        'test config file path')
    parser.add_argument('checkpoint', nargs='?',
                        help='checkpoint file (omit for ZeroShotCLIP)')
    parser.add_argument('--out-dir', required=True,
                        help='folder of <split>.png and <split>.csv')
    parser.add_argument('--include-values', action='store_true',
                        help='write the counts into the cells')
    parser.add_argument('--cmap', default='viridis',
                        help='matplotlib colour map [viridis]')
    add_run_options(parser, work_dir_help='where logs go')
    return parse_run_args(parser, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmpl.utils.errors import run_cli
    return run_cli(_confusion, args)


def _confusion(args) -> int:
    import matplotlib

    from mmpl import apis
    from mmpl.apis.analysis import (confusion_matrix_files, test_predictions,
                                    test_split_names, write_confusion_matrices)
    from mmpl.utils.errors import ConfigError
    from mmpl.utils.io import check_outputs
    if args.cmap not in matplotlib.colormaps:
        raise ConfigError(f'--cmap {args.cmap!r} is not a matplotlib colour '
                          'map. Give e.g. viridis, Blues or magma')
    cfg = apis.load_config(args.config, **run_config_kwargs(args))
    check_outputs(args.out_dir, confusion_matrix_files(test_split_names(cfg)),
                  '--out-dir')
    metrics, splits = test_predictions(cfg, args.checkpoint,
                                       check_only=args.check_only)
    if splits is None:  # another process, or --check-only
        return 0
    for path in write_confusion_matrices(splits, args.out_dir,
                                         args.include_values, args.cmap):
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
