# Sourced by dist_run.sh and slurm_run.sh (not run on its own): the Python
# to start (PYTHON; default: the repository's .venv, made by `make env`,
# else python3) and the check of process counts.
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
if [ -z "$PYTHON" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then
        PYTHON="$ROOT/.venv/bin/python"
    else
        PYTHON=python3
    fi
fi

# mmpl_check_count NAME VALUE EXAMPLE: exit 2 with one line unless VALUE is
# a whole number >= 1.
mmpl_check_count() {
    if ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
        echo "mmpl: error: $1 must be a whole number >= 1, got '$2'." \
            "Give a count, e.g. $3" >&2
        exit 2
    fi
}
