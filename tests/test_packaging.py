"""mmpl installed as OpenMMLab packages are: configs, tools and the
method catalogue (model-index.yml, metafiles) in ``mmpl/.mim``, ``mmpl::``
config bases, a wheel that installs offline and runs the train/test entry
points (and ``mim search`` / ``mim train`` / ``mim test`` when openmim is
installed).

Default suite: the wheel (build, offline install, contents), ``mmpl::``
resolution inside and outside the repo, the installed catalogue, the
installed tools/train.py (2 iterations), ``mim search`` (with openmim).
``--run-slow`` adds the installed tools/test.py and mim train / test."""
import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest
import yaml
from mmengine.config import Config

#: run first; one pytest-xdist worker runs the whole module (its module
#: fixtures are costly: conftest.SHARED_FIXTURE_MODULES)
pytestmark = pytest.mark.heavy

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: what the wheel is built from (a copy: the build writes into its tree)
SOURCES = ('setup.py', 'MANIFEST.in', 'model-index.yml', 'README.md',
           'requirements.txt', 'mmpl', 'configs', 'tools')
#: the distributions a fresh venv gets from the mmpl wheel's requirements
#: (from the wheelhouse), not from this environment
DECLARED = ('mmcv', 'mmengine', 'mmpretrain', 'open_clip', 'setuptools',
            'pkg_resources', '_distutils_hack', 'distutils-precedence',
            'mmpl', '__editable__')
WHEELHOUSE = osp.join(ROOT, 'wheelhouse')
SHIPPED = ('mpl/ftp_tvp_vitb16_b2n_eurosat.py',
           'coop/coop_vitb16_b2n_eurosat.py', '_base_/default_runtime.py')


def user_config(path, base: str, data_root: str) -> str:
    """A user's config outside the repo: inherits ``base`` from the
    installed mmpl and runs it on the embedded benchmark (tiny shipped
    CLIP, generated images, 64 px, one epoch of 2 iterations). The CLIP is
    the user's own files: an open_clip model config and a weight file
    (the lab's, which the wheel does not ship)."""
    from mmpl_lab.clips import SHAPES_CLIP
    from mmpl_lab.shapes import IMAGE_DIR, SPLIT_FILE, TEMPLATE
    text = textwrap.dedent(f"""\
        _base_ = ['{base}']
        shapes = dict(type='CoOpCustomDataset', data_root={data_root!r},
                      split_file={SPLIT_FILE!r}, image_dir={IMAGE_DIR!r},
                      template={TEMPLATE!r}, slug='shapes')
        train_pipeline = [
            dict(type='CheckedLoadImageFromFile'),
            dict(type='RandomResizedCrop', scale=64,
                 crop_ratio_range=(0.5, 1.0), backend='pillow'),
            dict(type='PackInputs')]
        test_pipeline = [dict(type='CheckedLoadImageFromFile'),
                         dict(type='Resize', scale=64, backend='pillow'),
                         dict(type='PackInputs')]
        model = dict(clip=dict(arch={SHAPES_CLIP['arch']!r},
                               pretrained={SHAPES_CLIP['pretrained']!r}))
        train_dataloader = dict(
            batch_size=16, num_workers=0, persistent_workers=False,
            dataset=dict(dataset=dict(
                num_shots=2,  # 30 images: 2 iterations
                dataset=dict(shapes, pipeline=train_pipeline))))
        _split = dict(
            batch_size=64, num_workers=0, persistent_workers=False,
            dataset=dict(dataset=dict(shapes, pipeline=test_pipeline)))
        val_dataloader = dict(base=_split, new=_split)
        test_dataloader = val_dataloader
        train_cfg = dict(max_epochs=1)
        default_hooks = dict(logger=dict(interval=5))
        """)
    path.write_text(text)
    return str(path)


def test_editable_checkout_resolves_mmpl_configs(tmp_path):
    """In this (editable) environment too: ``mmpl::`` bases resolve to the
    repository's configs through mmpl/.mim (symlinks made by setup.py)."""
    import mmpl  # noqa: F401  (adds the mmpl scope to mmengine)
    for rel in SHIPPED:
        assert osp.isfile(osp.join(osp.dirname(mmpl.__file__), '.mim',
                                   'configs', rel)), rel
    cfg_file = tmp_path / 'mine.py'
    cfg_file.write_text("_base_ = ['mmpl::mpl/ftp_tvp_vitb16_b2n_eurosat.py']"
                        "\nmodel = dict(text_prompt=dict(n_ctx=2))\n")
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.model.text_prompt.type == 'FTP'
    assert cfg.model.text_prompt.n_ctx == 2
    assert cfg.model.visual_prompt.type == 'TVP'
    assert cfg.train_cfg.max_epochs == 10


def _run(cmd, cwd, timeout=300, **kw):
    proc = subprocess.run([str(c) for c in cmd], cwd=str(cwd),
                          capture_output=True, text=True, timeout=timeout,
                          **kw)
    assert proc.returncode == 0, (cmd, proc.stdout[-2000:],
                                  proc.stderr[-4000:])
    return proc


def check_product_wheel(path) -> None:
    """The wheel is the plugin: under 1 MB, no weight files, none of the
    lab (projects/lab: the demo, the yardstick, the speed benchmark)."""
    import zipfile
    assert os.path.getsize(path) < 2**20, os.path.getsize(path)
    names = zipfile.ZipFile(path).namelist()
    lab_tools = ('demo.py', 'benchmark.py', 'yardstick.py',
                 'profile_step.py', 'pretrain_tiny_clip.py')
    bad = [n for n in names if n.endswith(('.pt', '.pth', '.bin'))
           or 'mmpl_lab' in n or 'mmpl/benchmark' in n
           or osp.basename(n) in lab_tools]
    assert not bad, bad
    assert 'mmpl/testing/mmpl-tiny-vit.json' in names


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """A wheel built from a copy of the sources, installed offline with its
    declared requirements into a fresh venv that has torch and the other
    binary wheels (linked from this environment) but no OpenMMLab package,
    open_clip or setuptools. Returns (venv python, its mmpl dir)."""
    work = tmp_path_factory.mktemp('wheel')
    src = work / 'src'
    src.mkdir()
    for name in SOURCES:
        if osp.isdir(osp.join(ROOT, name)):
            shutil.copytree(osp.join(ROOT, name), src / name,
                            ignore=shutil.ignore_patterns(
                                '__pycache__', '*.pyc', '.mim', '*.egg-info'))
        else:
            shutil.copy(osp.join(ROOT, name), src / name)
    # the checkout of an editable install: mmpl/.mim links to the folders
    mim = src / 'mmpl' / '.mim'
    mim.mkdir()
    for name in ('configs', 'tools', 'model-index.yml'):
        (mim / name).symlink_to(osp.join('..', '..', name))
    _run([sys.executable, '-m', 'pip', 'wheel', src, '--no-deps',
          '--no-build-isolation', '--no-index', '-w', work / 'dist', '-q'],
         work)
    # building the wheel (with copies) leaves the editable links in place:
    # a config added later is still found through mmpl::
    assert all((mim / n).is_symlink() for n in ('configs', 'tools',
                                                'model-index.yml'))
    wheels = os.listdir(work / 'dist')
    assert len(wheels) == 1 and wheels[0].endswith('.whl'), wheels
    check_product_wheel(work / 'dist' / wheels[0])
    venv = work / 'venv'
    # no pip of its own (ensurepip costs ~10 s): this environment's pip
    # installs into it (pip --python)
    _run([sys.executable, '-m', 'venv', '--without-pip', venv], work)
    python = venv / 'bin' / 'python'
    purelib = _run([python, '-c', 'import sysconfig; '
                    "print(sysconfig.get_paths()['purelib'])"],
                   work).stdout.strip()
    # what a user's fresh venv already has (torch and the binary wheels,
    # linked from this environment: no download), and not what mmpl must
    # declare itself: pip installs those from the wheel's requirements, out
    # of the local wheelhouse (`make wheelhouse`), offline
    base = work / 'base-site'
    base.mkdir()
    ours = sysconfig.get_paths()['purelib']
    for name in os.listdir(ours):
        if not name.lower().startswith(DECLARED):
            (base / name).symlink_to(osp.join(ours, name))
    with open(osp.join(purelib, 'base-site.pth'), 'w') as f:
        f.write(str(base) + '\n')
    assert osp.isdir(WHEELHOUSE), 'run `make wheelhouse` (make test does)'
    _run([sys.executable, '-m', 'pip', '--python', python, 'install',
          '--no-index', '--find-links', WHEELHOUSE, '-q',
          work / 'dist' / wheels[0]], work)
    return python, osp.join(purelib, 'mmpl'), work


def test_wheel_ships_configs_and_tools_as_copies(installed):
    _, pkg, _ = installed
    mim = osp.join(pkg, '.mim')
    for rel in ('model-index.yml', 'tools/train.py', 'tools/test.py',
                'tools/infer.py', 'tools/dist_train.sh',
                'tools/misc/list_models.py') + _metafiles():
        assert osp.isfile(osp.join(mim, rel)) and not osp.islink(
            osp.join(mim, rel)), rel
    for rel in SHIPPED:
        path = osp.join(mim, 'configs', rel)
        assert osp.isfile(path) and not osp.islink(path), rel
    assert not osp.islink(osp.join(mim, 'configs'))


def _metafiles() -> tuple:
    """The metafiles this checkout's model-index.yml imports."""
    with open(osp.join(ROOT, 'model-index.yml'), encoding='utf-8') as f:
        return tuple(yaml.safe_load(f)['Import'])


def _user_env(python) -> dict:
    """The environment of a user of the installed venv: its bin first on
    PATH, no PYTHONPATH (which may point to this checkout)."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['PATH'] = f'{osp.dirname(python)}:{env["PATH"]}'
    return env


def test_installed_catalogue_lists_the_models(installed, tmp_path):
    """mmpl.apis.list_models of the installed package reads its own
    catalogue (mmpl/.mim), outside the repo: every model, each config in
    the package."""
    from mmpl.apis import list_models
    python, pkg, _ = installed
    proc = _run([python, '-c', textwrap.dedent("""\
        import os
        from mmpl.apis import list_models
        models = list_models()
        print(len(models))
        print(sum(os.path.isfile(m.config_file) for m in models))
        print(os.path.dirname(models[0].config_file))
        """)], tmp_path, env=_user_env(python))
    count, found, folder = proc.stdout.strip().splitlines()[-3:]
    ours = list_models()
    assert int(count) == len(ours)
    assert int(found) == sum(osp.isfile(m.config_file) for m in ours)
    assert folder == osp.join(pkg, '.mim', 'configs', 'coop')


@pytest.mark.skipif(importlib.util.find_spec('mim') is None,
                    reason='openmim is not installed (optional extra: '
                    'pip install mmpl[mim])')
def test_mim_search_finds_the_catalogue(installed, tmp_path):
    """``mim search mmpl`` on the installed wheel (mim reads
    mmpl/.mim/model-index.yml of a regular install): every model."""
    from mmpl.apis import list_models
    python, _, _ = installed
    proc = _run([python, '-m', 'mim', 'search', 'mmpl', '--valid-config'],
                tmp_path, env=_user_env(python))
    for model in list_models():
        assert f"'{model.name}'" in proc.stdout, model.name


def test_installed_mmpl_resolves_configs_outside_the_repo(installed,
                                                          tmp_path):
    python, pkg, _ = installed
    cfg_file = tmp_path / 'mine.py'
    cfg_file.write_text("_base_ = ['mmpl::mpl/ftp_tvp_vitb16_b2n_eurosat.py']"
                        '\n')
    proc = _run([python, '-c', textwrap.dedent("""\
        import mmpl, sys
        from mmengine.config import Config
        cfg = Config.fromfile('mine.py')
        print(mmpl.__file__)
        print(cfg.model.text_prompt.type, cfg.model.visual_prompt.type)
        """)], tmp_path)
    where, types = proc.stdout.strip().splitlines()[-2:]
    assert where == osp.join(pkg, '__init__.py')  # the wheel, not the repo
    assert types == 'FTP TVP'


@pytest.fixture(scope='module')
def user_run(installed, tmp_path_factory):
    """tools/train.py of the installed package (what ``mim train mmpl``
    runs) on a user config outside the repo inheriting
    ``mmpl::coop/...``: one epoch of the embedded benchmark (2 iterations
    of the tiny CLIP). Returns (config, checkpoint, folder)."""
    from mmpl_lab.shapes import write_downstream_dataset
    python, pkg, _ = installed
    work = tmp_path_factory.mktemp('user')
    # 2 training images per class: what num_shots=2 samples anyway
    data_root = write_downstream_dataset(str(work / 'shapes'),
                                         images_per_class=(2, 0, 1))
    cfg = user_config(work / 'coop_shapes.py',
                      'mmpl::coop/coop_vitb16_b2n_eurosat.py', data_root)
    _run([python, osp.join(pkg, '.mim', 'tools', 'train.py'), cfg,
          '--work-dir', 'w', '--no-validate'], work)
    return cfg, work / 'w' / 'epoch_1.pth', work


def test_installed_train_entry_point_runs(user_run):
    _, ckpt, _ = user_run
    assert ckpt.is_file()


@pytest.mark.slow
def test_installed_test_entry_point_runs(installed, user_run):
    """tools/test.py of the installed package (``mim test mmpl``) on the
    checkpoint: the base/new test of the user config (30 images)."""
    import json
    python, pkg, _ = installed
    cfg, ckpt, work = user_run
    _run([python, osp.join(pkg, '.mim', 'tools', 'test.py'), cfg, ckpt,
          '--work-dir', 'w', '--out', 'metrics.json'], work)
    metrics = json.loads((work / 'metrics.json').read_text())
    assert {'base/accuracy/top1', 'new/accuracy/top1',
            'harmonic_mean'} <= set(metrics)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec('mim') is None,
                    reason='openmim is not installed (optional extra: '
                    'pip install mmpl[mim])')
def test_mim_train_and_test(installed, tmp_path):
    from mmpl_lab.shapes import write_downstream_dataset
    python, _, _ = installed
    data_root = write_downstream_dataset(str(tmp_path / 'shapes'),
                                         images_per_class=(2, 0, 1))
    cfg = user_config(tmp_path / 'coop_shapes.py',
                      'mmpl::coop/coop_vitb16_b2n_eurosat.py', data_root)
    env = dict(os.environ, PATH=f'{osp.dirname(python)}:{os.environ["PATH"]}')
    _run([python, '-m', 'mim', 'train', 'mmpl', cfg, '--work-dir', 'w',
          '--no-validate'], tmp_path, env=env)
    ckpt = tmp_path / 'w' / 'epoch_1.pth'
    assert ckpt.is_file()
    proc = _run([python, '-m', 'mim', 'test', 'mmpl', cfg, '--checkpoint',
                 ckpt, '--work-dir', 'w'], tmp_path, env=env)
    assert 'harmonic_mean' in proc.stdout + proc.stderr
