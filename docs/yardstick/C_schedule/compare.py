"""Paired base / new / HM differences of method pairs, with 95 % intervals:
compare.py WORK_DIR SEEDS... -- 'A|B' ... (comparisons.txt)."""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import variants  # noqa: F401,E402 (registers the variants)

from mmpl_lab import paired
from mmpl_lab import yardstick as ys  # noqa: E402

wd = sys.argv[1]
i = sys.argv.index('--')
seeds = [int(s) for s in sys.argv[2:i]]
pairs = [p.split('|') for p in sys.argv[i + 1:]]
tasks = list(ys.DEFAULT_TASKS)
recs = ys.read_records(wd, list(ys.METHODS), tasks, seeds)
for a, b in pairs:
    ua, ub = ys.units(recs, a, tasks), ys.units(recs, b, tasks)
    row = []
    for m in ('base', 'new', 'hm'):
        d = paired.paired_comparison(ua, ub, m)
        lo, hi = d['ci']
        row.append(f"{m} {d['diff']:+.2f} [{lo:+.2f}, {hi:+.2f}]")
    print(f'{a} - {b} (n={d["n_pairs"]}): ' + '  '.join(row))
