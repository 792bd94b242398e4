"""Run a benchmark: configs x datasets x shots x seeds, then the report.

    # few-shot CoOp, 5 shot counts x 11 datasets x 3 seeds, in this process
    python tools/run_benchmark.py \\
        configs/coop/coop_vitb16_fewshot16_eurosat.py \\
        --datasets all --shots 1 2 4 8 16 --seeds 1 2 3 \\
        --work-dir work_dirs/fewshot --data-root data
    # base-to-new of two methods, each run on 8 GPUs (tools/dist_train.sh)
    python tools/run_benchmark.py configs/coop/coop_vitb16_b2n_eurosat.py \\
        configs/maple/maple_vitb16_b2n_eurosat.py --datasets all \\
        --launcher pytorch --gpus 8
    # cross-dataset + domain generalisation: one ImageNet training per seed,
    # tested on the 10 targets and on the 4 ImageNet variants (slurm)
    python tools/run_benchmark.py configs/maple/maple_vitb16_xd_imagenet.py \\
        configs/maple/maple_vitb16_dg_imagenet.py --launcher slurm \\
        --partition gpu --gpus 1
    # print the commands only; check the whole plan offline in a minute
    python tools/run_benchmark.py CONFIG --datasets all --dry-run
    python tools/run_benchmark.py CONFIG --datasets all --smoke

Each run is a tools/train.py (or tools/test.py) run with its own work dir
<work-dir>/<config name>/seed<N>: in this process through mmpl.apis
(--launcher none), else as that tool's command line. A run whose results.json
(test_results.json) exists is skipped; an interrupted one resumes from its
last checkpoint; nothing is deleted or overwritten. At the end
tools/analysis_tools/report.py's tables (every protocol found under
--work-dir) go to <work-dir>/report. See docs/protocols.md.
"""
import argparse
import os
import os.path as osp
import shlex
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple

from mmpl.utils.cli import ArgumentParser, CfgOptionsAction

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
LAUNCHERS = ('none', 'subprocess', 'pytorch', 'slurm')


def parse_args(argv=None):
    parser = ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[2:]))
    parser.add_argument('configs', nargs='+', help='config file(s)')
    parser.add_argument(
        '--datasets', nargs='+', metavar='DATASET',
        help='run base-to-new / few-shot configs on these datasets (the '
        'sibling <method>_<arch>_<protocol>_<dataset>.py configs); "all" = '
        'the 11 benchmark datasets. Default: each config\'s own dataset')
    parser.add_argument('--seeds', nargs='+', type=int, default=[1, 2, 3])
    parser.add_argument(
        '--shots', nargs='+', type=int,
        help='few-shot configs: these shot counts (with the method\'s '
        'epochs by shots, e.g. CoOp\'s). Default: the config\'s own')
    parser.add_argument('--work-dir', default='work_dirs/benchmark',
                        help='root of every run\'s work dir')
    parser.add_argument(
        '--data-root',
        help='folder holding every dataset folder (eurosat/, imagenet/, ...'
        '); default: the configs\' data/<folder> paths')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='passed to every run, e.g. '
                        'model.clip.pretrained=checkpoints/ViT-B-16.pt')
    parser.add_argument(
        '--launcher', default='none', choices=LAUNCHERS,
        help='none: sequentially in this process; subprocess: one '
        'tools/train.py process per run; pytorch: tools/dist_train.sh with '
        '--gpus (CPU processes with gloo where there is no GPU); slurm: '
        'tools/slurm_train.sh with --partition and --gpus')
    parser.add_argument('--gpus', type=int, default=1,
                        help='GPUs per run (pytorch, slurm)')
    parser.add_argument('--partition', help='slurm partition')
    parser.add_argument('--srun-args', default='',
                        help='extra srun arguments (SRUN_ARGS of '
                        'tools/slurm_run.sh), e.g. '
                        '--srun-args="--quotatype=auto"')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the commands, run nothing')
    parser.add_argument(
        '--smoke', action='store_true',
        help='check the plan offline with any launcher: tiny random CLIP, '
        'miniature data (written under <work-dir>/smoke_data), one epoch')
    parser.add_argument('--report-dir',
                        help='default: <work-dir>/report')
    parser.add_argument('--no-report', action='store_true')
    return parser.parse_args(argv)


def _check_args(args) -> None:
    from mmpl.evaluation.protocols import BENCHMARK_DATASETS
    from mmpl.utils.checks import check_seeds
    from mmpl.utils.errors import ConfigError
    from mmpl.utils.io import check_outputs
    if args.datasets == ['all']:
        args.datasets = list(BENCHMARK_DATASETS)
    unknown = sorted(set(args.datasets or ()) - set(BENCHMARK_DATASETS))
    if unknown:
        raise ConfigError(f'unknown dataset(s) {", ".join(unknown)}; choose '
                          f'from {", ".join(BENCHMARK_DATASETS)} or all')
    if args.launcher == 'slurm' and not args.partition and not args.dry_run:
        raise ConfigError('--launcher slurm needs --partition')
    if args.gpus < 1:
        raise ConfigError(f'--gpus must be >= 1, got {args.gpus}')
    check_seeds('--seeds', args.seeds)
    for option in ('work_dir', 'report_dir'):  # folders, not files
        if getattr(args, option, None):
            check_outputs(getattr(args, option), (),
                          '--' + option.replace('_', '-'))


def _value(key: str, value: Any) -> str:
    """A ``--cfg-options`` value as mmengine's DictAction parses it back."""
    if isinstance(value, (list, tuple)):
        inner = ','.join(_value(key, v) for v in value)
        return f'[{inner}]' if isinstance(value, list) else f'({inner})'
    text = str(value)
    if isinstance(value, str) and (any(c.isspace() for c in text) or
                                   any(c in text for c in ',[]()"\'')):
        from mmpl.utils.errors import ConfigError
        raise ConfigError(f'{key}={text!r}: --cfg-options cannot carry '
                          'spaces, commas, brackets or quotes in a value; '
                          'use a path without them')
    return text


def tool_args(run, work_dir: bool = True) -> List[str]:
    """The tools/train.py or tools/test.py arguments of ``run`` (after the
    script name); ``work_dir=False`` leaves ``--work-dir`` out."""
    args = [run.config]
    if run.kind == 'test':
        args.append(checkpoint_of(run))
    if work_dir:
        args += ['--work-dir', run.work_dir]
    if run.kind == 'train':
        args += ['--seed', str(run.seed)]
        if osp.isfile(osp.join(run.work_dir, 'last_checkpoint')):
            args.append('--resume')
    if run.options:
        args += ['--cfg-options'] + [f'{k}={_value(k, v)}'
                                     for k, v in run.options.items()]
    return args


def checkpoint_of(run) -> str:
    """The model a test run evaluates: the training dir's last checkpoint
    when it exists, else the expected last epoch's file."""
    pointer = osp.join(run.train_dir or '', 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            return f.read().strip()
    return run.checkpoint


def _script(name: str) -> str:
    path = osp.join(ROOT, 'tools', name)
    rel = osp.relpath(path)
    return path if rel.startswith('..') else rel


def command(run, args) -> Tuple[Dict[str, str], List[str]]:
    """The launcher's command of ``run``: the environment variables it
    needs and the argv (tools/dist_*.sh, tools/slurm_*.sh, or python)."""
    if args.launcher == 'none' or args.launcher == 'subprocess':
        return {}, [sys.executable, '-u', _script(f'{run.kind}.py')] + \
            tool_args(run)
    env = {'PYTHON': sys.executable}
    if args.launcher == 'pytorch':
        rest = tool_args(run)
        n = 1 if run.kind == 'train' else 2  # CONFIG [CHECKPOINT] GPUS ...
        return env, ['bash', _script(f'dist_{run.kind}.sh')] + rest[:n] + \
            [str(args.gpus)] + rest[n:]
    env.update(GPUS=str(args.gpus), GPUS_PER_NODE=str(min(args.gpus, 8)))
    if args.srun_args:
        env['SRUN_ARGS'] = args.srun_args
    job = f'{run.kind}_{osp.basename(osp.dirname(run.work_dir))}_s{run.seed}'
    head = ['bash', _script(f'slurm_{run.kind}.sh'),
            args.partition or '<partition>', job]
    if run.kind == 'train':  # PARTITION JOB CONFIG WORK_DIR [train.py args]
        rest = tool_args(run, work_dir=False)
        return env, head + rest[:1] + [run.work_dir] + rest[1:]
    return env, head + tool_args(run)  # PARTITION JOB CONFIG CHECKPOINT ...


def shell_line(env: Dict[str, str], argv: List[str]) -> str:
    """``VAR=value ... argv`` as one shell line."""
    return ' '.join([f'{k}={shlex.quote(v)}' for k, v in env.items()] +
                    [shlex.join(argv)])


def execute(run, args) -> int:
    """Run ``run``; returns its exit status."""
    if args.launcher == 'none':
        from mmpl import apis
        cfg = apis.load_config(
            run.config, run.options, run.work_dir,
            seed=run.seed if run.kind == 'train' else None, quiet=args.smoke,
            unique_name=run.kind)
        if run.kind == 'train':
            resume = osp.isfile(osp.join(run.work_dir, 'last_checkpoint'))
            apis.train(cfg, resume='auto' if resume else None)
        else:
            apis.test(cfg, checkpoint_of(run))
        return 0
    extra, argv = command(run, args)
    env = dict(os.environ, **extra)
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    return subprocess.run(argv, env=env).returncode


def run_plan(runs, args) -> Optional[str]:
    """Execute (or print) ``runs`` in order, skipping finished ones.
    Returns an error line, or None."""
    if args.dry_run:
        print(f'# {len(runs)} runs; with PYTHONPATH={ROOT}')
    for i, run in enumerate(runs, 1):
        what = f'[{i}/{len(runs)}] {run.kind} {osp.basename(run.config)} ' \
            f'seed {run.seed} -> {run.work_dir}'
        if osp.isfile(run.done_file):
            print(f'# {what}: done ({run.done_file} exists), skipped')
            continue
        if args.dry_run:
            print(f'# {what}\n{shell_line(*command(run, args))}')
            continue
        if run.kind == 'test' and not osp.isfile(checkpoint_of(run)):
            return (f'{what}: the trained model {checkpoint_of(run)} does '
                    f'not exist (did the training in {run.train_dir} '
                    'finish?)')
        print(f'mmpl: {what}', flush=True)
        status = execute(run, args)
        if status != 0 or not osp.isfile(run.done_file):
            return (f'{what} failed (exit {status}); see the logs in '
                    f'{run.work_dir}, fix and re-run: finished runs are '
                    'skipped, this one resumes')
    return None


def report(args) -> int:
    """Every protocol's table from the results under --work-dir."""
    from mmpl.evaluation.report import to_markdown, write_reports
    out_dir = args.report_dir or osp.join(args.work_dir, 'report')
    if args.dry_run:
        print(f'{shlex.join([sys.executable, _script("analysis_tools/report.py"), args.work_dir, "--out-dir", out_dir])}')  # noqa: E501
        return 0
    tables = write_reports([args.work_dir], out_dir)
    for protocol, table in tables.items():
        print(f'\n## {protocol} ({args.work_dir})\n\n{to_markdown(table)}')
    print(f'mmpl: report written to {out_dir}')
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmpl.utils.errors import run_cli
    return run_cli(_run_benchmark, args)


def _run_benchmark(args) -> int:
    from mmpl.apis.benchmark_plan import BenchmarkPlanner
    _check_args(args)
    rewrite = None
    if args.smoke:  # offline: miniatures of every dataset, written once
        from mmpl.testing import offline_options
        smoke_dir, miniatures = osp.join(args.work_dir, 'smoke_data'), {}

        def rewrite(cfg):
            return offline_options(cfg, smoke_dir, roots=miniatures)
    planner = BenchmarkPlanner(args.work_dir, args.data_root,
                               args.cfg_options, rewrite)
    runs = planner.plan(args.configs, args.seeds, args.datasets, args.shots)
    error = run_plan(runs, args)
    if error:
        print(f'mmpl: error: {error}', file=sys.stderr)
        return 1
    return 0 if args.no_report else report(args)


if __name__ == '__main__':
    sys.exit(main())
