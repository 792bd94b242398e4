#!/usr/bin/env bash
# Multi-process training with torchrun:
#   bash tools/dist_train.sh CONFIG GPUS [train.py args]
# GPUS processes (NCCL); on a machine without a GPU, CPU processes with gloo.
# Environment: see tools/dist_run.sh.
if [ $# -lt 2 ]; then
    echo "usage: bash $0 CONFIG GPUS [train.py args]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/dist_run.sh" train "$2" "$1" "${@:3}"
