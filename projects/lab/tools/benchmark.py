"""Speed, memory and text-encoder work of a prompt-learning config, and its
speed-up over the per-image formulation of the original implementations.

    python projects/lab/tools/benchmark.py \\
        configs/cocoop/cocoop_vitb16_b2n_eurosat.py --reference
    python projects/lab/tools/benchmark.py CONFIG --device cuda --amp \\
        --num-classes 500 --grad-checkpointing --out bench.json

The config's model is built on ``--arch`` with random weights (nothing is
downloaded), with ``--num-classes`` real class names (ImageNet's), and fed
synthetic images. Per phase (``train``: forward + backward + SGD step;
``eval``: one evaluation pass of ``--steps`` batches) it prints images/s
(train: median step after warm-up; eval: the whole pass, as an evaluation
pays for its text features once), peak memory (CPU: resident set size of a
fresh process per phase; CUDA: max allocated) and the text encoder's work
(sequences x tokens per step), and how close the step runs to the
device's limit: the matmul FLOPs of a step counted from its operations'
shapes, the achieved GFLOP/s, and their fraction of a matmul probe run in
bursts between the timed steps (``projects/lab/mmpl_lab/efficiency.py``).
``--reference`` runs the per-image formulation on the same weights and
inputs (see ``projects/lab/mmpl_lab/speed.py``) and prints the ratios and
the max |logits(mmpl) - logits(reference)|.
"""
import argparse
import json
import os.path as osp
import platform
import subprocess
import sys

from mmpl.utils.cli import ArgumentParser, CfgOptionsAction

MiB = 1 << 20


def parse_args(argv=None):
    parser = ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--arch', default='ViT-B-16',
                        help='open_clip architecture, random weights')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--num-classes', type=int, default=50)
    parser.add_argument('--steps', type=int, default=3,
                        help='timed steps (train) / batches (eval)')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--probe-seconds', type=float, default=0.2,
                        help='time of each matmul probe burst (one before '
                        'each timed step and one after the last)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision for mmpl (fp16 on CUDA, bf16 '
                        'on CPU); the reference stays fp32')
    parser.add_argument('--grad-checkpointing', action='store_true',
                        help='recompute text blocks in backward (mmpl)')
    parser.add_argument('--text-chunk-size', type=int,
                        help="override the config's text_chunk_size (mmpl)")
    parser.add_argument('--reference', action='store_true',
                        help='also run the per-image formulation')
    parser.add_argument('--phases', nargs='+', default=['train', 'eval'],
                        choices=['train', 'eval'])
    parser.add_argument('--in-process', action='store_true',
                        help='measure everything in this process (faster; '
                        'CPU peak memory is then the peak so far)')
    parser.add_argument('--out', help='write the results as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    parser.add_argument('--worker', nargs=2, metavar=('PHASE', 'FORM'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--model-options', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _check_args(args) -> None:
    import torch

    from mmpl.utils.errors import (ConfigError, ExistingFileError,
                                   MissingFileError)
    if not osp.isfile(args.config):
        raise MissingFileError(f'config not found: {args.config!r}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise ConfigError('--device cuda: no CUDA GPU is visible')
    for name in ('batch_size', 'num_classes', 'steps'):
        if getattr(args, name) < 1:
            raise ConfigError(f'--{name.replace("_", "-")} must be >= 1')
    if args.warmup < 0:
        raise ConfigError('--warmup must be >= 0')
    if not args.probe_seconds > 0:
        raise ConfigError('--probe-seconds must be > 0')
    if args.out and osp.exists(args.out):
        raise ExistingFileError(
            f'--out {args.out!r} exists; give a new path')


def _model_options(args) -> dict:
    """Config overrides: --cfg-options and the memory options."""
    if args.model_options:  # a worker: as its parent resolved them
        return json.loads(args.model_options)
    options = dict(args.cfg_options or {})
    if args.grad_checkpointing:
        options['model.clip.grad_checkpointing'] = True
    if args.text_chunk_size is not None:
        options['model.text_chunk_size'] = args.text_chunk_size
    return options


def build(args):
    from mmpl_lab.speed import build_benchmark_model
    return build_benchmark_model(args.config, args.arch, args.num_classes,
                                 args.device, cfg_options=_model_options(args))


def measure(model, args, phase: str, form: str) -> dict:
    from mmpl_lab.speed import measure as measure_phase
    return measure_phase(model, phase, form, args.batch_size, args.steps,
                         args.warmup, args.amp and form == 'mmpl',
                         args.probe_seconds).to_dict()


def _worker_command(args, phase: str, form: str) -> list:
    """This script, rerun for one phase of one formulation."""
    cmd = [sys.executable, osp.abspath(__file__), args.config,
           '--arch', args.arch, '--batch-size', str(args.batch_size),
           '--num-classes', str(args.num_classes), '--steps', str(args.steps),
           '--warmup', str(args.warmup), '--device', args.device,
           '--probe-seconds', str(args.probe_seconds),
           '--worker', phase, form,
           '--model-options', json.dumps(_model_options(args))]
    return cmd + (['--amp'] if args.amp else [])


def run_worker(args, phase: str, form: str) -> dict:
    proc = subprocess.run(_worker_command(args, phase, form),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = '\n'.join(proc.stderr.strip().splitlines()[-20:])
        raise RuntimeError(f'benchmark worker ({phase}, {form}) failed:\n'
                           f'{tail}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ratio(num: float, den: float):
    return num / den if den else None


def ratios(results: list) -> dict:
    """Per phase: speed-up (mmpl images/s over reference) and the memory
    fractions (mmpl over reference) of the peak and of the working memory
    (peak minus what was resident before the phase)."""
    by_key = {(r['phase'], r['formulation']): r for r in results}
    out = {}
    for (phase, form), fast in by_key.items():
        ref = by_key.get((phase, 'reference'))
        if form != 'mmpl' or ref is None:
            continue
        out[phase] = dict(
            speedup=_ratio(fast['images_per_s'], ref['images_per_s']),
            peak_memory_fraction=_ratio(fast['peak_bytes'],
                                        ref['peak_bytes']),
            working_memory_fraction=_ratio(fast['working_bytes'],
                                           ref['working_bytes']),
            text_token_fraction=_ratio(fast['text_tokens_per_step'],
                                       ref['text_tokens_per_step']))
    return out


def run(args) -> dict:
    """Measure every phase and formulation; the report as a dict."""
    import torch

    from mmpl_lab.speed import max_logit_difference, synthetic_batch
    forms = ['mmpl'] + (['reference'] if args.reference else [])
    model = build(args)
    method = model.method_name
    results = []
    for form in forms:
        for phase in args.phases:
            results.append(measure(model, args, phase, form)
                           if args.in_process else
                           run_worker(args, phase, form))
    report = dict(
        config=args.config, method=method, arch=args.arch,
        weights='random', batch_size=args.batch_size,
        num_classes=args.num_classes, steps=args.steps,
        device=args.device, amp=args.amp,
        grad_checkpointing=args.grad_checkpointing,
        text_chunk_size=model.text_chunk_size,
        memory='per-phase process' if not args.in_process else
        'one process (peak so far)',
        host=dict(machine=platform.machine(), processor=platform.processor(),
                  torch=torch.__version__, threads=torch.get_num_threads(),
                  gpu=(torch.cuda.get_device_name()
                       if args.device == 'cuda' else None)),
        results=results, ratios=ratios(results))
    if args.reference:
        images, _ = synthetic_batch(model, args.batch_size, seed=1)
        report['max_logit_difference'] = max_logit_difference(model, images)
    return report


def _fmt(value, spec: str = '.2f') -> str:
    """A ratio, or n/a where its denominator was 0 (e.g. no working memory
    measurable in one process with --in-process)."""
    return 'n/a' if value is None else format(value, spec)


def format_table(report: dict) -> str:
    """The report as a fixed-width table."""
    precision = 'AMP' if report['amp'] else 'fp32'
    lines = [
        f"{report['method']} ({osp.basename(report['config'])}), "
        f"{report['arch']} random weights, B={report['batch_size']}, "
        f"C={report['num_classes']}, {report['device']} {precision}, "
        f"{report['steps']} steps",
        f"{'phase':<6} {'formulation':<11} {'images/s':>9} "
        f"{'peak MiB':>9} {'work MiB':>9} {'text seq/step':>14} "
        f"{'text tok/step':>14} {'GFLOP/step':>10} {'GFLOP/s':>8} "
        f"{'probe':>6} {'of probe':>8}"
    ]
    for r in report['results']:
        lines.append(
            f"{r['phase']:<6} {r['formulation']:<11} "
            f"{r['images_per_s']:>9.3f} {r['peak_bytes'] / MiB:>9.0f} "
            f"{r['working_bytes'] / MiB:>9.0f} "
            f"{r['text_sequences_per_step']:>14.0f} "
            f"{r['text_tokens_per_step']:>14.0f} "
            f"{r['flops_per_step'] / 1e9:>10.1f} "
            f"{r['achieved_gflops']:>8.1f} "
            f"{r['probe_gflops'][r['compute_dtype']]:>6.0f} "
            f"{r['probe_fraction']:>8.0%}")
    if report['results']:
        lines.append(
            '"probe": GFLOP/s of the matmul probe in the step\'s dtype, the '
            'median of its bursts between the timed steps; "of probe": '
            'GFLOP/s over probe')
    for phase, r in report['ratios'].items():
        lines.append(
            f"{phase}: {_fmt(r['speedup'], '.1f')}x the images/s of the "
            f"reference; memory {_fmt(r['peak_memory_fraction'])} of its "
            f"peak, {_fmt(r['working_memory_fraction'])} of its working "
            f"memory; {_fmt(r['text_token_fraction'])} of its text tokens")
    if 'max_logit_difference' in report:
        lines.append('max |logits(mmpl) - logits(reference)|: '
                     f"{report['max_logit_difference']:.2e}")
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmpl.utils.errors import run_cli
    return run_cli(_benchmark, args)


def _benchmark(args) -> int:
    _check_args(args)
    if args.worker:
        print(json.dumps(measure(build(args), args, *args.worker)))
        return 0
    report = run(args)
    print(format_table(report))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
        print(f'results written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
