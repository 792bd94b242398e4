"""Shared set-up of the product's tests (tests/) and the lab's
(projects/lab/tests/): temp files, threads, markers, scheduling and the
fixtures of a tiny random CLIP (built once per session).

Everything is offline and on CPU; ``mmpl-tiny-vit`` (width 64, 2+2 layers)
builds in ~0.2 s with random weights."""
import os
import shutil
import sys
import tempfile


def _use_memory_tmpdir(root: str = '/dev/shm', need_gb: float = 2.0) -> None:
    """Temporary files (mmengine's per-config temp files, the subprocesses'
    too) in memory where a tmpfs has room: on a disk mounted with
    ``discard`` their writes and unlinks were most of many tests' time.
    pytest's ``tmp_path`` folders stay on the disk's temp dir
    (``PYTEST_DEBUG_TEMPROOT``), which was faster for the training tests
    (docs/performance.md, "The test suite"). ``MMPL_TEST_TMPDIR`` picks
    the folder (e.g. ``/tmp`` to opt out)."""
    folder = os.environ.get('MMPL_TEST_TMPDIR')
    if folder is None:
        try:
            if shutil.disk_usage(root).free < need_gb * 2**30:
                return
        except OSError:
            return
        folder = os.path.join(root, 'mmpl-tests')
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return
    if os.access(folder, os.W_OK):
        os.environ.setdefault('PYTEST_DEBUG_TEMPROOT', tempfile.gettempdir())
        os.environ['TMPDIR'] = folder
        tempfile.tempdir = folder


_use_memory_tmpdir()  # before anything creates a temporary file


def _one_thread_per_worker() -> None:
    """Under pytest-xdist (``make test`` runs one worker per core) each
    worker and the processes it starts use one OpenMP thread, whatever
    ``OMP_NUM_THREADS`` said: two workers of two threads each on 2 cores
    oversubscribe, which makes torch 5-10x slower."""
    if os.environ.get('PYTEST_XDIST_WORKER'):
        os.environ['OMP_NUM_THREADS'] = '1'
        os.environ['MKL_NUM_THREADS'] = '1'


_one_thread_per_worker()  # before torch is imported

# tests/helpers.py, for the lab's tests too
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'tests'))

import pytest  # noqa: E402
import torch  # noqa: E402
from mmpretrain.utils import register_all_modules  # noqa: E402

import mmpl  # noqa: F401,E402  (registers mmpl's modules)
from mmpl.testing import register_tiny_arch  # noqa: E402

register_all_modules(init_default_scope=True)
if os.environ.get('PYTEST_XDIST_WORKER'):
    torch.set_num_threads(1)

# the tests name the tiny CLIP (``mmpl-tiny-vit``) in-process; commands
# they start get its model config file (mmpl.testing.TINY_ARCH)
TINY_ARCH = register_tiny_arch()


@pytest.fixture(scope='session')
def tiny_clip():
    """A frozen tiny CLIP shared by all tests: do not mutate it."""
    from mmpl.clip import FrozenCLIP
    torch.manual_seed(0)
    return FrozenCLIP(arch=TINY_ARCH)


@pytest.fixture(scope='session')
def tiny_images():
    """(2, 3, 224, 224) normalised-looking random images."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 224, 224, generator=g)


@pytest.fixture(scope='module')
def images():
    """(3, 3, 224, 224) random images (fixed seed) for prompt-module tests."""
    return torch.randn(3, 3, 224, 224,
                       generator=torch.Generator().manual_seed(7))


@pytest.fixture(scope='module')
def frozen(tiny_clip, images):
    """The tiny CLIP's frozen image pass over ``images`` (f0 and Z0)."""
    from mmpl.prompts import FrozenImageFeatures
    with torch.no_grad():
        f0, z0 = tiny_clip.encode_image(images, return_tokens=True)
    return FrozenImageFeatures(f0.float(), z0.float())


def pytest_addoption(parser):
    parser.addoption('--run-slow', action='store_true',
                     help='also run the tests marked slow (e.g. the smoke '
                     'run of every few-shot config)')


def pytest_configure(config):
    config.addinivalue_line('markers',
                            'slow: long; skipped unless --run-slow')
    config.addinivalue_line('markers',
                            'heavy: over ~5 s (a fresh process, a training '
                            'run); run first, so that pytest-xdist does not '
                            'leave one worker finishing it alone')
    config.addinivalue_line('markers',
                            'cuda: needs a CUDA GPU; skipped with a reason '
                            'where none is visible (`pytest -m cuda` selects '
                            'them: tests/test_cuda.py, '
                            'projects/lab/tools/gpu_check.sh)')


#: test modules whose module-scoped fixtures cost seconds (a 2-process
#: training, a pip install, a training run): pytest-xdist sends each of them
#: whole to one worker instead of repeating its fixtures on every worker
SHARED_FIXTURE_MODULES = frozenset(
    [f'tests/test_{name}.py'
     for name in ('distributed', 'packaging', 'inference', 'tools')]
    + ['projects/lab/tests/test_shapes_benchmark.py'])


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, if present
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scheduling by scope where a scope is one test, except
    that each module of :data:`SHARED_FIXTURE_MODULES` is one scope: those
    go whole to one worker, and first (``--loadscope-reorder``, on by
    default, queues the scopes with the most tests first); the other tests
    follow in collection order. (``--dist loadgroup`` would group by
    marks, but pytest-xdist 3.8 sets a node id attribute that pytest 9 no
    longer reads.)"""
    if config.getvalue('dist') != 'load':
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split('::', 1)[0]
            return module if module in SHARED_FIXTURE_MODULES else nodeid

    return SharedFixtureScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    # the modules with a heavy test first, whole (their module fixtures
    # are built once), each in its collected order (a stable sort)
    heavy = {item.module.__name__ for item in items
             if item.get_closest_marker('heavy')}
    items[:] = sorted(items,
                      key=lambda item: item.module.__name__ not in heavy)
    if not torch.cuda.is_available():
        no_gpu = pytest.mark.skip(
            reason='cuda: no CUDA GPU visible (torch.cuda.is_available() is '
            'False); run `pytest -m cuda` on a GPU machine')
        for item in items:
            if item.get_closest_marker('cuda'):
                item.add_marker(no_gpu)
    if config.getoption('--run-slow'):
        return
    skip = pytest.mark.skip(reason='slow: run with --run-slow')
    for item in items:
        if 'slow' in item.keywords:
            item.add_marker(skip)
