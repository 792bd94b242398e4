"""The offline demo behind `make demo`: the embedded base-to-new benchmark.

Writes the generated colour x shape dataset (downstream rendering, CoOp
split layout), evaluates zero-shot CLIP and trains each method's real config
on its base classes with mmpl's pretrained tiny CLIP (mmpl-shapes-vit), on
CPU, then prints base / new / HM and writes the table (Markdown + CSV) and a
plot (PNG) to the work dir. Same runner, loops, datasets and classifier as a
GPU run on real data; only the CLIP, the data, the input size (64 px) and
the schedule are small (see projects/lab/mmpl_lab/shapes.py).
"""
import argparse
import os.path as osp
import sys
import time

from mmpl_lab import REPO_ROOT as ROOT


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args(argv)
    from mmpl.utils.errors import run_cli
    return run_cli(_demo, args)


def _demo(args) -> int:
    from mmpl.evaluation.report import (build_tables, find_results,
                                        report_files, to_markdown,
                                        write_report)
    from mmpl.utils.io import adopt_outputs, check_outputs
    from mmpl_lab.shapes import METHODS, run_methods, write_downstream_dataset

    # before any work; a demo folder of an older mmpl (no list of outputs,
    # its runs/ folder) is the demo's own
    adopt_outputs(args.work_dir, report_files('b2n'), 'runs')
    check_outputs(args.work_dir, report_files('b2n'), '--work-dir')
    start = time.time()
    data_root = write_downstream_dataset(osp.join(args.work_dir, 'data',
                                                  'shapes'))
    runs = osp.join(args.work_dir, 'runs')
    run_methods(METHODS, data_root, runs, config_root=ROOT)
    table = build_tables(find_results([runs]), ['b2n'])['b2n']
    paths = write_report(
        table, args.work_dir,
        title='embedded benchmark: tiny CLIP, generated shapes, 16 shots')
    print('\nmmpl demo: base-to-new on the embedded benchmark '
          '(mmpl-shapes-vit, generated colour x shape images), '
          f'{time.time() - start:.0f} s')
    print(to_markdown(table.averages()))
    print('\n'.join(f'wrote {p}' for p in paths.values()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
