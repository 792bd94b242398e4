"""mmpl: CLIP prompt learning as an OpenMMLab (mmpretrain) plugin.

As OpenMMLab packages do (``add_mim_extension``), the configs, the tools and
``model-index.yml`` are shipped inside the package, in ``mmpl/.mim``:
symlinks to the repository's folders for an editable install
(``pip install -e .``), copies for a wheel or an sdist. That is where
mmengine finds ``mmpl::<family>/<config>.py`` bases and where
``mim train mmpl CONFIG`` finds ``tools/train.py``.
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

MIM_FILES = ('configs', 'tools', 'model-index.yml')


def _fill_mim(mode: str) -> None:
    """``mmpl/.mim/<name>`` for every ``MIM_FILES`` name: a symlink to the
    repository's file or folder (``mode='symlink'``) or a copy."""
    repo = osp.dirname(osp.abspath(__file__))
    mim = osp.join(repo, 'mmpl', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(repo, name), osp.join(mim, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


def add_mim_extension() -> bool:
    """Fill ``mmpl/.mim`` with ``MIM_FILES``: symlinks when installed in
    editable mode, copies when a wheel or an sdist is built; nothing for
    other commands (egg_info, dist_info ...). Returns whether copies
    replaced an editable install's symlinks (to be put back after the
    build: a wheel built in a checkout must not hide new configs from the
    editable install's ``mmpl::``)."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        _fill_mim('symlink')
        return False
    if any(c in sys.argv for c in ('sdist', 'bdist_wheel', 'build',
                                   'build_py', 'install')):
        mim = osp.join(osp.dirname(osp.abspath(__file__)), 'mmpl', '.mim')
        linked = any(osp.islink(osp.join(mim, n)) for n in MIM_FILES)
        _fill_mim('copy')
        return linked
    return False


def read_version() -> str:
    scope: dict = {}
    with open('mmpl/version.py', encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


relink_mim = add_mim_extension()
setup(
    name='mmpl',
    version=read_version(),
    description='CLIP prompt learning (CoOp, CoCoOp, MaPLe, CTP/TFT, FTP/TVP, '
    'DGPrompt) for OpenMMLab',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmpl', 'mmpl.*']),
    package_data={
        'mmpl': [
            'testing/*.json', 'datasets/meta/*.txt'
        ]
    },
    # mmpl/.mim (configs, tools, model-index.yml): MANIFEST.in
    include_package_data=True,
    python_requires='>=3.9',
    # Compatible ranges: a user's own CUDA torch keeps working. The tested pins
    # are in requirements.txt (installed by `make env`).
    install_requires=[
        'torch>=2.1',
        'torchvision>=0.16',
        'mmengine>=0.10.4,<0.11',
        'mmpretrain>=1.2.0,<2',
        # mmpretrain imports mmcv; its ops are not used (mmcv-lite: no CUDA
        # build). mmengine imports pkg_resources, gone from setuptools 81.
        'mmcv-lite>=2.0.0rc4,<2.3',
        'setuptools<81',
        'open_clip_torch>=2.32,<4',
        'numpy',
        'pillow',
    ],
    extras_require={
        'lite': ['mmcv-lite>=2.0.0rc4,<2.3'],
        'tests': ['pytest'],
        'report': ['matplotlib'],
        # `mim train mmpl CONFIG`, `mim test mmpl CONFIG --checkpoint CKPT`
        'mim': ['openmim>=0.3.9'],
    },
    license='Apache-2.0',
)
if relink_mim:
    _fill_mim('symlink')
