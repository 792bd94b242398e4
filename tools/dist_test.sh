#!/usr/bin/env bash
# Multi-process evaluation with torchrun:
#   bash tools/dist_test.sh CONFIG [CHECKPOINT] GPUS [test.py args]
# Omit CHECKPOINT for methods with nothing learned (ZeroShotCLIP). Every
# test sample counts once whatever GPUS is. Environment: see
# tools/dist_run.sh.
if [ $# -lt 2 ]; then
    echo "usage: bash $0 CONFIG [CHECKPOINT] GPUS [test.py args]" >&2
    exit 2
fi
CONFIG=$1
if [ $# -ge 3 ] && [[ ! $2 =~ ^[0-9]+$ || -f $2 ]]; then
    exec bash "$(dirname "$0")/dist_run.sh" test "$3" "$CONFIG" "$2" "${@:4}"
fi
exec bash "$(dirname "$0")/dist_run.sh" test "$2" "$CONFIG" "${@:3}"
