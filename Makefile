# The two set-up commands: `make demo` and `make test`. Both create the
# environment (.venv, the tested pins of requirements.txt) when it is missing.
SHELL   := /bin/bash
.SHELLFLAGS := -o pipefail -c
PY      ?= python3
VENV    := .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.mmpl-env-$(shell cat requirements.txt setup.py projects/lab/setup.py | cksum | cut -d' ' -f1)
# pytest-xdist workers, one OpenMP thread each (conftest.py);
# TEST_WORKERS=0 runs the suite in one process
TEST_WORKERS ?= auto
# the product's tests and the lab's
TESTS   := tests projects/lab/tests
# pip prints one harmless line per local index folder it cannot read.
QUIET   := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: env wheelhouse wheelhouse-gpu demo test test-portable lint clean-env

env: $(STAMP)

$(STAMP): requirements.txt setup.py projects/lab/setup.py
	rm -f $(VENV)/.mmpl-env-*
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	# torch/torchvision first, as a pair (STACK.md), then the rest.
	$(PYTHON) -m pip install -q torch==2.14.1 torchvision==0.29.1 $(QUIET)
	$(PYTHON) -m pip install -q -r requirements.txt $(QUIET)
	$(PYTHON) -m pip install -q --no-deps --no-build-isolation -e . $(QUIET)
	# the project's lab (demo, yardstick, speed benchmark): not in the wheel
	$(PYTHON) -m pip install -q --no-deps --no-build-isolation -e projects/lab $(QUIET)
	# the `mim` extra for the tests of `mim search/train/test`: openmim without
	# its opendatalab/openxlab chain (it pins setuptools 60), plus what mim's
	# commands import
	$(PYTHON) -m pip install -q --no-deps openmim==0.3.9 $(QUIET)
	$(PYTHON) -m pip install -q pandas==3.1.1 tabulate==0.10.0 colorama==0.4.6 requests==2.34.2 $(QUIET)
	$(PYTHON) -c "import mmpl, mmpl_lab, torch, open_clip, mmpretrain; print('mmpl', mmpl.__version__, 'torch', torch.__version__)"
	touch $@

# The pure-Python wheels mmpl declares beyond torch (the tested pins of
# requirements.txt), for installing the mmpl wheel without a registry: the
# packaging test installs them into a fresh venv with --no-index.
WHEELHOUSE := wheelhouse
WHEELS_STAMP := $(WHEELHOUSE)/.mmpl-$(shell cat requirements.txt | cksum | cut -d' ' -f1)

wheelhouse: $(WHEELS_STAMP)

$(WHEELS_STAMP): requirements.txt | env
	rm -rf $(WHEELHOUSE)
	$(PYTHON) -m pip download -q --no-deps -d $(WHEELHOUSE) \
	    $$(grep -E '^(mmengine|mmcv-lite|mmpretrain|open_clip_torch|setuptools)\b' requirements.txt) $(QUIET)
	touch $@

# The wheels a GPU machine without a package registry lacks
# (projects/lab/gpu-wheels.txt: mmengine, mmcv-lite, mmpretrain,
# open_clip_torch, ftfy and their pure dependencies), for its Python
# (GPU_PYTHON, manylinux x86_64); projects/lab/tools/gpu_check.sh installs
# the ones that machine lacks, offline. The folder travels with the tree to
# the GPU machine: it must stay well under the 64 MiB the tree may take.
WHEELHOUSE_GPU := wheelhouse-gpu
GPU_PYTHON ?= 3.12
WHEELHOUSE_GPU_MAX_MIB := 40

wheelhouse-gpu: projects/lab/gpu-wheels.txt | env
	rm -rf $(WHEELHOUSE_GPU)
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: \
	    --python-version $(GPU_PYTHON) --implementation cp \
	    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	    --platform manylinux2014_x86_64 \
	    -d $(WHEELHOUSE_GPU) -r projects/lab/gpu-wheels.txt $(QUIET)
	@size=$$(du -sm $(WHEELHOUSE_GPU) | cut -f1); \
	echo "$(WHEELHOUSE_GPU): $$(ls $(WHEELHOUSE_GPU) | wc -l) wheels, $${size} MiB"; \
	test $$size -le $(WHEELHOUSE_GPU_MAX_MIB) || \
	    { echo "over $(WHEELHOUSE_GPU_MAX_MIB) MiB" >&2; exit 1; }

demo: env
	$(PYTHON) projects/lab/tools/demo.py --work-dir work_dirs/demo

test: env wheelhouse
	$(PYTHON) -m pytest -q -n $(TEST_WORKERS) $(TESTS)

# The lint gate (run by .ci/run): pycodestyle and pyflakes through ruff
# (ruff.toml), the import order through isort (.isort.cfg, OpenMMLab's).
lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/isort --check-only --diff mmpl tools tests docs projects \
	    setup.py conftest.py

# The suite under the portable CPU kernels (no vector units) and under AVX2:
# a numeric test must pass whichever kernels a CI machine picks (run once
# per change that touches numerics; AVX-512 / AMX machines pick their own).
test-portable: env wheelhouse
	ATEN_CPU_CAPABILITY=default $(PYTHON) -m pytest -q -n $(TEST_WORKERS) $(TESTS)
	ATEN_CPU_CAPABILITY=avx2 $(PYTHON) -m pytest -q -n $(TEST_WORKERS) $(TESTS)

clean-env:
	rm -rf $(VENV)
