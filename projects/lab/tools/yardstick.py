"""The yardstick: every method on the caption world's tasks over seeds.

    python projects/lab/tools/yardstick.py --work-dir work_dirs/yardstick
    python projects/lab/tools/yardstick.py --seeds $(seq 9 16) \\
        --work-dir work_dirs/yardstick_confirm  # the confirmation set

Writes the generated tasks (CoOp split layout) under ``<work-dir>/data``,
runs every (task, method, seed) that has no ``results.json`` yet (the
command resumes), and writes ``yardstick.md``, ``yardstick.csv``,
``yardstick.png`` and ``summary.json`` (methods; orderings of the published
baselines and ablations, each a paired difference with its 95 % interval
and minimum detectable effect) to the work dir; ``records.jsonl`` has one
line per finished run (copy it into another work dir to go on there).
``--confirms FIRST_WORK_DIR`` on a run with disjoint seeds writes
``replication.md``: each verdict of both runs, and whether they agree. One
progress line per run; each run's logs are in its folder. See
projects/lab/mmpl_lab/yardstick.py for the protocol and the statistics.
"""
import os.path as osp
import sys
import time

from mmpl_lab import REPO_ROOT as ROOT


def parse_args(argv=None):
    from mmpl.utils.cli import ArgumentParser
    from mmpl_lab import yardstick as ys
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/yardstick')
    parser.add_argument('--seeds', type=int, nargs='+',
                        default=list(ys.DEFAULT_SEEDS),
                        help='seeds (default: the first set, 1-8; the '
                        'confirmation set is 9-16)')
    parser.add_argument('--tasks', nargs='+', default=list(ys.DEFAULT_TASKS),
                        help='tasks (default: all): ' +
                        ', '.join(ys.DEFAULT_TASKS))
    parser.add_argument('--methods', nargs='+', default=list(ys.METHODS),
                        help='method labels, quoted where they have spaces '
                        '(default: all): ' + ', '.join(
                            repr(m) if ' ' in m else m for m in ys.METHODS))
    parser.add_argument('--jobs', type=int, default=2,
                        help='runs in parallel, one thread each (default 2)')
    parser.add_argument('--clip-weights', default=None,
                        help='another weight file for mmpl-world-vit '
                        '(default: the lab\'s pretrained one)')
    parser.add_argument('--test-per-class', type=int, default=None,
                        help='quick look / smoke only: test images per '
                        'class (default: the protocol, >= 1000 per split)')
    parser.add_argument('--max-epochs', type=int, default=None,
                        help="quick look / smoke only: every method's "
                        "epochs (default: each family's own schedule)")
    parser.add_argument('--confirms', metavar='WORK_DIR', default=None,
                        help='the work dir of the first seed set: compare '
                        'its verdicts with this run\'s (disjoint seeds) and '
                        'write replication.md here')
    parser.add_argument('--summary-only', action='store_true',
                        help='summarise the finished runs, run nothing')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from mmpl.utils.errors import run_cli
    return run_cli(run, parse_args(argv))


def run(args) -> int:
    """Run what is missing, then summarise; print the tables."""
    from mmpl.utils.checks import check_seeds
    from mmpl.utils.errors import ConfigError
    from mmpl.utils.io import mark_outputs
    from mmpl_lab import yardstick as ys
    ys.check_names(args.methods, args.tasks)
    first = None
    if args.confirms is not None:
        first = _first_summary(args.confirms, args.seeds)
    check_seeds('--seeds', args.seeds)
    if args.jobs < 1:
        raise ConfigError(f'--jobs must be at least 1, got {args.jobs}')
    if args.clip_weights and not osp.isfile(args.clip_weights):
        raise ConfigError(f'--clip-weights {args.clip_weights} is not a '
                          'file. Give the path of a mmpl-world-vit state dict')
    clip = (dict(ys.WORLD_CLIP,  # a file of mmpl's recipe (GELU)
                 pretrained='mmpl:' + osp.abspath(args.clip_weights))
            if args.clip_weights else None)
    for name in ('test_per_class', 'max_epochs'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ConfigError(f'--{name.replace("_", "-")} must be at least '
                              f'1, got {getattr(args, name)}')
    quick = ys.QuickLook(args.test_per_class, args.max_epochs)
    work_dir = osp.abspath(args.work_dir)
    start = time.time()
    ys.check_work_dir_outputs(work_dir)  # before hours of runs
    if not args.summary_only:
        ys.measure_headroom(work_dir, args.tasks, clip, quick,
                            log=lambda line: print(line, flush=True))
        ys.run_missing(work_dir, args.methods, args.tasks, args.seeds,
                       args.jobs, ROOT, clip, quick,
                       log=lambda line: print(line, flush=True))
    elif not ys.read_records(work_dir, args.methods, args.tasks,
                             args.seeds):
        raise ConfigError(f'--summary-only: {work_dir} holds no finished run '
                          'of these methods, tasks and seeds. Give the work '
                          'dir of a yardstick run, or run it first')
    summary, paths = ys.summarise_runs(work_dir, args.methods, args.tasks,
                                       args.seeds, quick)
    print(f'\n{summary["title"]} ({time.time() - start:.0f} s)')
    print(ys.to_markdown(summary))
    if first is not None:
        table = ys.replication_markdown(first, summary)
        path = osp.join(work_dir, 'replication.md')
        with open(path, 'w') as f:
            f.write(table + '\n')
        mark_outputs(work_dir, ['replication.md'])
        print(f'\nreplication of {args.confirms}:\n{table}')
        paths['replication'] = path
    print('\n'.join(f'wrote {p}' for p in paths.values()))
    return 0


def _first_summary(work_dir: str, seeds) -> dict:
    """The summary.json of the first seed set's work dir, whose seeds
    must not overlap ``seeds``."""
    import json

    from mmpl.utils.errors import ConfigError
    path = osp.join(work_dir, 'summary.json')
    if not osp.isfile(path):
        raise ConfigError(f'--confirms {work_dir}: no summary.json there. '
                          'Give the work dir of a finished yardstick run')
    try:
        with open(path) as f:
            first = json.load(f)
    except ValueError as e:
        raise ConfigError(f'--confirms {work_dir}: summary.json is not JSON '
                          f'({e}). Run --summary-only there again') from None
    shared = sorted(set(first.get('seeds', [])) & set(seeds))
    if shared:
        raise ConfigError(f'--confirms {work_dir}: seeds {shared} are in '
                          'both runs. A confirmation needs disjoint seeds')
    return first


if __name__ == '__main__':
    sys.exit(main())
