"""Run any config end to end offline, in seconds: a tiny random CLIP and
generated images written in each dataset's own on-disk layout.

    python tools/misc/smoke.py configs/coop/coop_vitb16_b2n_eurosat.py

Trains one short epoch (when the config trains), evaluates every split, and
prints the metrics as one JSON line. Use it to check a config before a long
GPU run; the test suite runs it on every config in configs/.
"""
import json
import sys
import tempfile

from mmpl.utils.cli import ArgumentParser, add_cfg_options


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--work-dir',
                        help='default: a temporary folder, removed after')
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    from mmpl.utils.errors import run_cli
    return run_cli(_smoke, args)


def _smoke(args) -> int:
    from mmpl.testing import smoke
    if args.work_dir:
        metrics = smoke(args.config, args.work_dir, args.cfg_options)
    else:
        with tempfile.TemporaryDirectory(prefix='mmpl-smoke-') as tmp:
            metrics = smoke(args.config, tmp, args.cfg_options)
    print('smoke metrics: ' + json.dumps(metrics, sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
