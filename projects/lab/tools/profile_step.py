"""Profile one step of a prompt-learning config: where its time goes.

    OMP_NUM_THREADS=2 python projects/lab/tools/profile_step.py \\
        configs/coop/coop_vitb16_b2n_eurosat.py [--phase train|eval]

The model is built as ``projects/lab/tools/benchmark.py`` builds it
(``--arch`` with random weights, ``--num-classes`` ImageNet class names,
synthetic images). After one warm-up step it prints the FLOPs of one step
per operation (``projects/lab/mmpl_lab/efficiency.py``'s count, and the
operations it has no formula for) and the torch profiler's table of one
step by self CPU time: proportions and call counts, which stay meaningful
on a busy machine where absolute times do not.
"""
import time

from mmpl.utils.cli import ArgumentParser


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--arch', default='ViT-B-16')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--num-classes', type=int, default=50)
    parser.add_argument('--phase', default='train', choices=['train', 'eval'])
    parser.add_argument('--rows', type=int, default=20,
                        help='rows of the profiler table')
    parser.add_argument('--shapes', action='store_true',
                        help='profiler rows by input shapes')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmpl.utils.errors import run_cli
    return run_cli(_profile, args)


def _profile(args) -> int:
    import torch

    from mmpl.utils.checks import check_int
    for name in ('batch_size', 'num_classes', 'rows'):
        check_int('--' + name.replace('_', '-'), getattr(args, name))

    from mmpl_lab import speed
    from mmpl_lab.efficiency import count_flops
    model = speed.build_benchmark_model(args.config, args.arch,
                                        args.num_classes)
    images, samples = speed.synthetic_batch(model, args.batch_size)
    step = (speed._train_step(model, images, samples, 'mmpl', False)
            if args.phase == 'train' else
            speed._eval_step(model, images, 'mmpl', False))
    with speed.formulation(model, 'mmpl'):
        model.train(args.phase == 'train')
        step()  # warm-up (and KgCoOp's anchors, computed once)
        if args.phase == 'eval':
            model.train()
            model.eval()  # text cache empty: the step encodes its text
        flops, by_op = count_flops(step, by_op=True)
        activities = [torch.profiler.ProfilerActivity.CPU]
        with torch.profiler.profile(activities=activities,
                                    record_shapes=args.shapes) as prof:
            start = time.perf_counter()
            step()
            seconds = time.perf_counter() - start
    print(f'{model.method_name} {args.phase} step: {flops / 1e9:.1f} GFLOP '
          f'in {seconds:.2f} s ({flops / seconds / 1e9:.1f} GFLOP/s)')
    for name, (calls, op_flops) in sorted(
            by_op.items(), key=lambda kv: -(kv[1][1] or 0)):
        if op_flops:
            print(f'  {name:58s} {op_flops / 1e9:8.2f} GFLOP {calls:5d} calls')
    print('  not counted (no FLOP formula):', ', '.join(
        f'{name} x{calls}' for name, (calls, op_flops) in sorted(by_op.items())
        if op_flops is None and any(k in name for k in (
            'mm', 'conv', 'attention', 'linear', 'matmul', 'einsum'))) or
        'no matmul-like operation')
    table = prof.key_averages(group_by_input_shape=args.shapes).table(
        sort_by='self_cpu_time_total', row_limit=args.rows,
        max_name_column_width=55)
    print(table)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
