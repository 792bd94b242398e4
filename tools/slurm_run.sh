#!/usr/bin/env bash
# srun for tools/train.py or tools/test.py (mmengine launcher "slurm"), one
# task per GPU, shared by slurm_train.sh and slurm_test.sh:
#   bash tools/slurm_run.sh train|test PARTITION JOB_NAME [tool args]
# Environment: GPUS (tasks, default 8), GPUS_PER_NODE (default 8),
# CPUS_PER_TASK (default 5), SRUN_ARGS (extra srun options), PYTHON
# (default: the repository's .venv/bin/python when there is one, else
# python3).
TOOL=$1
PARTITION=$2
JOB_NAME=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/tools/launch_env.sh"
mmpl_check_count GPUS "$GPUS" "GPUS=16 bash tools/slurm_$TOOL.sh ..."
mmpl_check_count GPUS_PER_NODE "$GPUS_PER_NODE" "GPUS_PER_NODE=8 ..."
mmpl_check_count CPUS_PER_TASK "$CPUS_PER_TASK" "CPUS_PER_TASK=5 ..."
set -x

PYTHONPATH="$ROOT":$PYTHONPATH \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    --gres=gpu:"${GPUS_PER_NODE}" \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$ROOT/tools/$TOOL.py" --launcher=slurm "${@:4}"
