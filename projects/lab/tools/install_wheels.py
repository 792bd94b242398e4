"""Install, offline, the wheels of a wheelhouse that this Python lacks into
a folder for ``PYTHONPATH`` (a GPU machine without a package registry:
``make wheelhouse-gpu`` fills the wheelhouse on a machine with one).

    python projects/lab/tools/install_wheels.py WHEELHOUSE TARGET

A wheel is installed (``pip install --no-index --no-deps --target``;
unpacked as the wheel format says where this Python has no pip) when
its distribution is missing here, or installed at a version mmpl's stack
cannot use (:data:`UNUSABLE`: setuptools >= 81 has no ``pkg_resources``,
which mmengine imports); the distributions already here stay theirs, so a
machine's own torch, numpy or matplotlib are never shadowed. Afterwards it
checks that what the wheelhouse does not carry (:data:`PROVIDED`, e.g.
OpenCV and matplotlib, binary and large) can be imported, and that mmpl's
stack imports. Only the standard library is used: this runs before
anything else is importable.
"""
import importlib.util
import os
import re
import subprocess
import sys
from importlib import metadata
from typing import Callable, Dict, List, Optional, Tuple

#: what the GPU machine must have itself (distribution -> module): the
#: wheelhouse leaves them out (torch and its stack; OpenCV, ~50 MB, which
#: mmcv imports; matplotlib and its compiled dependencies, which mmengine's
#: Visualizer imports when a runner is built)
PROVIDED = {
    'torch': 'torch', 'torchvision': 'torchvision', 'timm': 'timm',
    'numpy': 'numpy', 'pillow': 'PIL', 'pyyaml': 'yaml', 'regex': 'regex',
    'tqdm': 'tqdm', 'huggingface-hub': 'huggingface_hub',
    'safetensors': 'safetensors', 'packaging': 'packaging',
    'opencv-python': 'cv2', 'matplotlib': 'matplotlib',
}
#: distribution -> (first unusable version): installed at or above it, the
#: wheelhouse's version is installed over it on PYTHONPATH
UNUSABLE = {'setuptools': (81, )}
#: what must import once the wheels are in
STACK = ('mmengine', 'mmcv', 'mmpretrain', 'open_clip', 'ftfy',
         'pkg_resources')


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r'[-_.]+', '-', name).lower()


def wheel_name_version(filename: str) -> Tuple[str, str]:
    """(canonical name, version) of a wheel file name."""
    name, version = os.path.basename(filename).split('-')[:2]
    return canonical(name), version


def version_tuple(version: str) -> tuple:
    """The leading numbers of a version string, for comparisons."""
    numbers = []
    for part in version.split('.'):
        match = re.match(r'\d+', part)
        if not match:
            break
        numbers.append(int(match.group()))
    return tuple(numbers)


def installed_version(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def choose(wheels: List[str],
           installed: Callable[[str], Optional[str]] = installed_version
           ) -> Tuple[List[str], Dict[str, str]]:
    """(wheels to install, {name: why skipped}) for ``wheels``."""
    install, skipped = [], {}
    for wheel in sorted(wheels):
        name, _ = wheel_name_version(wheel)
        have = installed(name)
        limit = UNUSABLE.get(name)
        if have is None:
            install.append(wheel)
        elif limit is not None and version_tuple(have) >= limit:
            install.append(wheel)
        else:
            skipped[name] = f'{have} installed'
    return install, skipped


def unpack_wheel(wheel: str, target: str) -> None:
    """Install ``wheel`` into ``target`` without pip: its files as they
    are, those of ``<name>.data/purelib`` and ``platlib`` moved to the top
    (scripts and headers are not needed on ``PYTHONPATH``)."""
    import shutil
    import zipfile
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            parts = member.split('/')
            if parts[0].endswith('.data'):
                if len(parts) < 3 or parts[1] not in ('purelib', 'platlib'):
                    continue
                parts = parts[2:]
            dest = os.path.join(target, *parts)
            if member.endswith('/'):
                continue
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with zf.open(member) as src, open(dest, 'wb') as out:
                shutil.copyfileobj(src, out)


def install_into(wheels: List[str], target: str) -> None:
    """``wheels`` into ``target``: pip offline, else :func:`unpack_wheel`
    (a Python without pip)."""
    os.makedirs(target, exist_ok=True)
    if importlib.util.find_spec('pip') is None:
        for wheel in wheels:
            unpack_wheel(wheel, target)
        return
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q',
                    '--no-index', '--no-deps', '--no-compile',
                    '--no-cache-dir', '--upgrade', '--target', target]
                   + wheels, check=True)


_TRY_IMPORTS = """import importlib, sys
missing = []
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
    except Exception:
        missing.append(module)
print(' '.join(missing))
"""


def missing_modules(modules, env: Optional[dict] = None) -> List[str]:
    """Those of ``modules`` that this Python (with ``env``) cannot import,
    tried in one fresh process."""
    proc = subprocess.run([sys.executable, '-c', _TRY_IMPORTS] +
                          list(modules), env=env, capture_output=True,
                          text=True, check=True)
    return proc.stdout.split()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print('usage: install_wheels.py WHEELHOUSE TARGET', file=sys.stderr)
        return 2
    wheelhouse, target = argv
    wheels = [os.path.join(wheelhouse, f) for f in os.listdir(wheelhouse)
              if f.endswith('.whl')]
    if not wheels:
        print(f'mmpl: error: no wheels in {wheelhouse}. Fill it with `make '
              'wheelhouse-gpu` on a machine with a package registry',
              file=sys.stderr)
        return 2
    install, skipped = choose(wheels)
    if skipped:
        print('already here: ' + ', '.join(
            f'{k} ({v})' for k, v in sorted(skipped.items())))
    if install:
        print('installing into ' + target + ': ' + ', '.join(
            '=='.join(wheel_name_version(w)) for w in install))
        try:
            install_into(install, target)
        except (subprocess.CalledProcessError, OSError) as exc:
            print(f'mmpl: error: installing the wheels into {target} '
                  f'failed ({exc}). See the output above', file=sys.stderr)
            return 2
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [target] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    absent = missing_modules(PROVIDED.values(), env)
    if absent:
        print('mmpl: error: this Python lacks ' + ', '.join(absent) +
              ', which the wheelhouse does not carry. Install them from '
              'its own packages', file=sys.stderr)
        return 2
    broken = missing_modules(STACK, env)
    if broken:
        print('mmpl: error: ' + ', '.join(broken) + ' still do not import '
              f'with {target} on PYTHONPATH. Check the wheelhouse (`make '
              'wheelhouse-gpu`)', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
