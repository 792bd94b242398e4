"""Aggregate benchmark runs into each protocol's table.

    python tools/analysis_tools/report.py work_dirs/ --out-dir reports
    python tools/analysis_tools/report.py work_dirs/ --protocols b2n \
        --out-dir reports/b2n                   # base-to-new only

Reads the run records under the given folders (written by RunResultsHook:
method, dataset, seed, protocol, shots, metrics): ``results.json`` (the
evaluation at the end of training) for base-to-new and few-shot runs,
``test_results.json`` (tools/test.py) for cross-dataset (xd) and domain
generalisation (dg) runs. Per protocol it averages over seeds (mean ± sample
std per method and dataset) and adds each method's average row:

  b2n      base and new averaged over the datasets, HM of the two averages
  fewshot  per shot count, the mean over the datasets
  xd / dg  the mean over the target datasets (ImageNet, the source, excluded)

and writes <protocol>_table.md, <protocol>_table.csv and <protocol>_plot.png.
"""
import sys

from mmpl.utils.cli import ArgumentParser


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dirs', nargs='+',
                        help='folders holding results.json files (searched '
                        'recursively), or the files themselves')
    parser.add_argument('--out-dir', default='reports')
    parser.add_argument('--protocols', nargs='+', default=None,
                        choices=['b2n', 'fewshot', 'xd', 'dg'],
                        help='only these protocols (default: all found)')
    parser.add_argument('--filename', default=None,
                        help='read only files of this name for every '
                        'protocol (default: results.json for b2n/fewshot, '
                        'test_results.json for xd/dg)')
    parser.add_argument('--title', default='', help='title of the plots')
    return parser.parse_args(argv)


def run(args) -> int:
    """Write the reports for parsed ``args``; print the tables."""
    from mmpl.evaluation.report import to_markdown, write_reports
    tables = write_reports(args.work_dirs, args.out_dir, args.filename,
                           args.protocols, args.title)
    if not tables:
        wanted = ', '.join(args.protocols or ['any protocol'])
        print(f'mmpl: error: no results of {wanted} found under '
              f'{" ".join(args.work_dirs)}', file=sys.stderr)
        return 2
    for protocol, table in tables.items():
        print(f'## {protocol}\n\n{to_markdown(table)}')
        print(f'wrote {args.out_dir}/{protocol}_table.md, '
              f'{protocol}_table.csv, {protocol}_plot.png\n')
    return 0


def main(argv=None) -> int:
    from mmpl.utils.errors import run_cli
    return run_cli(run, parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
