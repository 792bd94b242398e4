#!/bin/bash
# Issue 34's speed check: the benchmark tool's training rows (ViT-B/16 random
# weights, B=4, C=50, 3 steps after 1 warm-up, 2 CPU threads) of CoOp,
# CoCoOp and MaPLe, before the issue's changes (BEFORE: a worktree at
# 9aeed30) and after (AFTER: a worktree at the commit measured), run
# alternately in one session with nothing else running.
set -u
BEFORE=${BEFORE:-/work/wt-before}
AFTER=${AFTER:-/work/wt-after}
PY=${PY:-/work/main/.venv/bin/python}
OUT=${1:-work_dirs/issue34_speed}
mkdir -p "$OUT"
date -u +%FT%T > "$OUT/start"
for round in 1 2; do
  for family in coop/coop cocoop/cocoop maple/maple; do
    name=$(basename $family)
    cfg=configs/${family}_vitb16_b2n_eurosat.py
    (cd "$BEFORE" && PYTHONPATH=$BEFORE OMP_NUM_THREADS=2 $PY \
        tools/analysis_tools/benchmark.py $cfg --phases train --steps 3 \
        --out "$OLDPWD/$OUT/before_${name}_$round.json" \
        > "$OLDPWD/$OUT/before_${name}_$round.log" 2>&1)
    (cd "$AFTER" && PYTHONPATH=$AFTER:$AFTER/projects/lab OMP_NUM_THREADS=2 $PY \
        projects/lab/tools/benchmark.py $cfg --phases train --steps 3 \
        --out "$OLDPWD/$OUT/after_${name}_$round.json" \
        > "$OLDPWD/$OUT/after_${name}_$round.log" 2>&1)
  done
done
date -u +%FT%T > "$OUT/end"
