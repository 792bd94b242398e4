"""Train a prompt-learning config (mmpretrain-style entry point).

    python tools/train.py configs/coop/coop_vitb16_b2n_eurosat.py
    python tools/train.py CONFIG --data-root data/eurosat --seed 2
    bash tools/dist_train.sh CONFIG 8      # 8 GPUs; on CPU: gloo processes

A config with ``runner_type = 'FlexibleRunner'`` and a ``strategy`` (e.g.
FSDP) is built by mmengine's RUNNERS registry, as in mmpretrain.
"""
import sys

from mmpl.utils.cli import (add_run_options, parse_run_args, run_config_kwargs,
                            run_parser)


def parse_args(argv=None):
    parser = run_parser('Train a prompt learner', 'train config file path')
    add_run_options(parser)
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest one in '
        'the work dir when no path is given')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (GPU), float16')
    parser.add_argument('--amp-dtype', choices=['float16', 'bfloat16'],
                        help='automatic mixed precision in this dtype '
                        '(implies --amp)')
    parser.add_argument('--seed', type=int,
                        help='run seed (>= 0): sets randomness.seed and the '
                        'few-shot sampling seed (benchmark seeds: 1, 2, 3)')
    parser.add_argument('--no-validate', action='store_true',
                        help='skip the evaluation after training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the lr linearly by the batch size (processes x '
        'train_dataloader.batch_size) over the config\'s '
        'auto_scale_lr.base_batch_size, the batch of the method\'s paper')
    return parse_run_args(parser, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmpl.utils.errors import run_cli
    return run_cli(_train, args)


def _train(args) -> int:
    from mmpl import apis
    cfg = apis.load_config(args.config, seed=args.seed,
                           **run_config_kwargs(args))
    apis.train(cfg, resume=args.resume, amp=args.amp_dtype or args.amp,
               validate=not args.no_validate, check_only=args.check_only,
               auto_scale_lr=args.auto_scale_lr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
