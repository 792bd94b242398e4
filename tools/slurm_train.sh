#!/usr/bin/env bash
# Training on a Slurm cluster, one task per GPU:
#   GPUS=16 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
# Resume an interrupted job with --resume. Environment: see
# tools/slurm_run.sh.
exec bash "$(dirname "$0")/slurm_run.sh" train "$1" "$2" "$3" \
    --work-dir="$4" "${@:5}"
