#!/usr/bin/env bash
# torchrun for tools/train.py or tools/test.py (mmengine launcher "pytorch"),
# shared by dist_train.sh and dist_test.sh:
#   bash tools/dist_run.sh train|test NPROC [tool args]
# One process per GPU (NCCL). Without a GPU (or CUDA_VISIBLE_DEVICES=-1) the
# processes run on CPU with gloo, for testing. Environment: NNODES,
# NODE_RANK, MASTER_ADDR, PORT (default 29500), PYTHON (default: the
# repository's .venv/bin/python when there is one, else python3).
set -e
TOOL=$1
NPROC=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/tools/launch_env.sh"
mmpl_check_count GPUS "$NPROC" "bash tools/dist_$TOOL.sh CONFIG 8"
mmpl_check_count NNODES "${NNODES:-1}" "NNODES=2 bash tools/dist_$TOOL.sh ..."
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

# the config and arguments are checked once here: a mistake is one line
# (exit 2), not one traceback per process
PYTHONPATH="$ROOT":$PYTHONPATH \
"$PYTHON" "$ROOT/tools/$TOOL.py" "${@:3}" --check-only || exit $?

PYTHONPATH="$ROOT":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$ROOT/tools/$TOOL.py" --launcher pytorch "${@:3}"
