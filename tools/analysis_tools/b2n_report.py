"""Aggregate base-to-new runs into the benchmark's table.

    python tools/analysis_tools/b2n_report.py work_dirs/ --out-dir reports/b2n

Reads every results.json under the given folders (written by RunResultsHook:
method, dataset, seed, metrics), averages base and new accuracy over seeds
per method and dataset (HM of the averages), adds each method's average row
(HM of averaged base and new, as the protocol defines) and writes
b2n_table.md, b2n_table.csv and b2n_plot.png.
"""
import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dirs', nargs='+',
                        help='folders holding results.json files')
    parser.add_argument('--out-dir', default='reports/b2n')
    parser.add_argument('--filename', default='results.json',
                        help='results.json (training) or test_results.json')
    parser.add_argument('--title', default='')
    args = parser.parse_args(argv)
    from mmpl.evaluation.report import (aggregate_b2n, find_results,
                                        to_markdown, write_b2n_report)
    try:
        rows = aggregate_b2n(find_results(args.work_dirs, args.filename))
    except (FileNotFoundError, ValueError) as exc:
        print(f'mmpl: error: {exc}', file=sys.stderr)
        return 2
    if not rows:
        print('mmpl: error: no base-to-new results found', file=sys.stderr)
        return 2
    paths = write_b2n_report(rows, args.out_dir, args.title)
    print(to_markdown(rows))
    print('\n'.join(f'wrote {p}' for p in paths.values()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
