"""The GPU check (issue 35): the CUDA tests, ``tools/dist_train.sh CONFIG
1`` and the speed benchmark on every family, written to
``OUT_DIR/gpu_check.md`` and ``OUT_DIR/gpu_check.json`` (the output of
every step in ``OUT_DIR/gpu_check.log``).

    bash projects/lab/tools/gpu_check.sh OUT_DIR     # installs what is missing
    python projects/lab/tools/gpu_check.py OUT_DIR [--device cpu --quick]

See ``projects/lab/mmpl_lab/gpu_check.py`` for what each step runs and
docs/performance.md ("The GPU check") for what it measures.
"""
import argparse
import os.path as osp
import shlex
import sys

from mmpl.utils.cli import ArgumentParser

STEPS = ('tests', 'dist', 'benchmarks')


def parse_args(argv=None):
    parser = ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out_dir', help='where the table, JSON and log go')
    parser.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    parser.add_argument('--quick', action='store_true',
                        help='the same steps small: the tiny CLIP, two '
                        'families, the CPU twins of the CUDA tests')
    parser.add_argument('--steps', nargs='+', default=list(STEPS),
                        choices=STEPS, help='the steps to run')
    parser.add_argument('--families', nargs='+',
                        help='benchmark only these families')
    parser.add_argument('--budget-s', type=float,
                        help='no benchmark run starts after this many '
                        'seconds of the check (default 380)')
    parser.add_argument('--work-dir',
                        help='scratch folder (default: a new temp folder)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmpl.utils.errors import run_cli
    return run_cli(_check, args, argv)


def _check(args, argv) -> int:
    import torch

    from mmpl.utils.errors import ConfigError
    from mmpl_lab import gpu_check
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise ConfigError('--device cuda: no CUDA GPU is visible. Run it on '
                          'a GPU machine, or --device cpu --quick to try '
                          'its logic')
    unknown = set(args.families or ()) - set(gpu_check.FAMILIES)
    if unknown:
        raise ConfigError(f'--families: unknown {sorted(unknown)}; choose '
                          f'from {sorted(gpu_check.FAMILIES)}')
    settings = gpu_check.settings_for(args.device, args.quick,
                                      budget_s=args.budget_s)
    if args.families:
        settings.families = tuple(args.families)
    command = 'bash projects/lab/tools/gpu_check.sh ' + ' '.join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    report = gpu_check.run_check(args.out_dir, settings, command,
                                 steps=tuple(args.steps),
                                 work_dir=args.work_dir)
    print(f'written: {report.markdown_path}, {report.json_path}, '
          f"{osp.join(args.out_dir, 'gpu_check.log')}")
    failures = report.failures()
    for line in failures:
        print(f'gpu_check: failed: {line}', file=sys.stderr)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
