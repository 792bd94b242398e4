"""Aggregate base-to-new runs into the benchmark's table.

    python tools/analysis_tools/b2n_report.py work_dirs/ --out-dir reports/b2n

tools/analysis_tools/report.py restricted to base-to-new: reads every
results.json under the given folders, averages base and new accuracy over
seeds per method and dataset (HM of the averages), adds each method's
average row (HM of averaged base and new, as the protocol defines) and
writes b2n_table.md, b2n_table.csv and b2n_plot.png.
"""
import os.path as osp
import sys


def main(argv=None) -> int:
    from mmpl.utils.scripts import load_script
    tool = load_script(osp.join(osp.dirname(osp.abspath(__file__)),
                                'report.py'))
    return tool.run(tool.parse_args(
        argv, description=__doc__.splitlines()[0], out_dir='reports/b2n',
        protocols=['b2n'], filename='results.json'))


if __name__ == '__main__':
    sys.exit(main())
