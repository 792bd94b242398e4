#!/usr/bin/env bash
# Evaluation on a Slurm cluster, one task per GPU:
#   GPUS=8 bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
# Every test sample counts once whatever GPUS is. Environment: see
# tools/slurm_run.sh.
exec bash "$(dirname "$0")/slurm_run.sh" test "$1" "$2" "$3" "$4" "${@:5}"
