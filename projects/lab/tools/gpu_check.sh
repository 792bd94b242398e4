#!/usr/bin/env bash
# The GPU check (issue 35) in one command, from a clone of the repository:
#   bash projects/lab/tools/gpu_check.sh OUT_DIR [gpu_check.py options]
#   bash projects/lab/tools/gpu_check.sh OUT_DIR --device cpu --quick
# writes OUT_DIR/gpu_check.md, gpu_check.json and gpu_check.log (the CUDA
# tests, tools/dist_train.sh CONFIG 1, the speed benchmark on every family;
# projects/lab/tools/gpu_check.py). About 8 minutes on one modern GPU.
#
# Python: PYTHON, else the repository's .venv, else python3. When it lacks
# mmengine, mmpretrain, mmcv, open_clip or ftfy (a GPU machine without a
# package registry), the wheels of wheelhouse-gpu/ (`make wheelhouse-gpu`
# on a machine with one; MMPL_WHEELHOUSE picks another folder) that it
# lacks are installed offline into MMPL_SITE (default
# ${TMPDIR:-/tmp}/mmpl-gpu-site), which goes on PYTHONPATH.
set -e
if [ $# -lt 1 ] || [[ $1 == -* ]]; then
    echo "usage: bash $0 OUT_DIR [--device cpu --quick] [--steps ...]" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
source "$ROOT/tools/launch_env.sh"
OUT_DIR=$1
shift
WHEELS=${MMPL_WHEELHOUSE:-$ROOT/wheelhouse-gpu}
if ! "$PYTHON" -c "import mmengine, mmpretrain, mmcv, open_clip, ftfy" \
        2>/dev/null; then
    if [ ! -d "$WHEELS" ]; then
        echo "mmpl: error: $PYTHON lacks mmengine/mmpretrain/mmcv/open_clip/" \
            "ftfy and there is no $WHEELS. Run \`make wheelhouse-gpu\` on a" \
            "machine with a package registry and bring the folder, or" \
            "install requirements.txt" >&2
        exit 2
    fi
    SITE=${MMPL_SITE:-${TMPDIR:-/tmp}/mmpl-gpu-site}
    "$PYTHON" "$ROOT/projects/lab/tools/install_wheels.py" "$WHEELS" "$SITE"
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT:$ROOT/projects/lab${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
exec "$PYTHON" "$ROOT/projects/lab/tools/gpu_check.py" "$OUT_DIR" "$@"
