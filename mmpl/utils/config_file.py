"""Read a config file: every mistake in it is one line naming the file.

mmengine's ``Config.fromfile`` runs the file (and every ``_base_`` it
inherits) as Python; what goes wrong there surfaces as a traceback through
mmengine's internals, sometimes naming a temporary copy of the file. Every
mmpl entry that reads a user's config (the tools, the converter, the
inference API, the protocol planner) reads it here.
"""
import os
import os.path as osp
from typing import Optional, Union

from mmengine.config import Config

from .errors import ConfigError, MissingFileError


def read_config(path: Union[str, os.PathLike]) -> Config:
    """``Config.fromfile``; a missing file, or a config that cannot be run
    (a syntax error, a name or import that fails, in the file or a base it
    inherits; a missing base file; no model) is one line naming the file,
    and the line where Python says."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not osp.isfile(path):
        raise MissingFileError(f'config not found: {path!r}. Give the path '
                               'of a config file, e.g. configs/coop/'
                               'coop_vitb16_b2n_eurosat.py')
    try:
        cfg = Config.fromfile(path)
        for key in list(cfg.keys()):
            cfg.get(key)  # builds what the file imports (mmengine: lazily)
    except SyntaxError as exc:
        # mmengine re-raises as 'There are syntax errors in config file
        # X: <the original message>' without the line
        cause = exc if exc.lineno else (exc.__context__ or exc)
        where = getattr(cause, 'filename', None)
        if not where or not osp.isfile(where):  # ast says '<unknown>'
            where = _checked_file(exc) or path
        line = getattr(cause, 'lineno', None)
        what = getattr(cause, 'msg', None) or str(exc)
        raise ConfigError(
            f'syntax error in config {where}'
            f'{":" + str(line) if line else ""}: {what}. Fix the file '
            '(it is Python)') from exc
    except FileNotFoundError as exc:  # a _base_ file
        raise MissingFileError(
            f'config {path} inherits {exc.filename or exc}, which does not '
            'exist. Fix its _base_ list (paths are relative to the '
            'file)') from exc
    except (NameError, ImportError, AttributeError, TypeError, KeyError,
            ValueError) as exc:
        where = _config_frame(exc) or path
        raise ConfigError(
            f'config {where} fails when run: {type(exc).__name__}: '
            f'{exc}. Fix the file (it is Python)') from exc
    if 'model' not in cfg:
        raise ConfigError(f'config {path} defines no model. Inherit a '
                          "model (_base_ = ['...']) or define model = "
                          'dict(type=...)')
    return cfg


def _config_frame(exc: BaseException) -> Optional[str]:
    """'file:line' of the last traceback frame in a config file (not in an
    installed package, Python's library or mmpl): the line that raised."""
    import sysconfig
    import traceback
    skip = {osp.dirname(osp.dirname(osp.abspath(__file__)))}
    skip |= {osp.abspath(p) for p in sysconfig.get_paths().values()}
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if osp.isfile(f.filename) and not any(
                  osp.abspath(f.filename).startswith(d + osp.sep)
                  for d in skip)]
    return f'{frames[-1].filename}:{frames[-1].lineno}' if frames else None


def _checked_file(exc: BaseException) -> Optional[str]:
    """The file mmengine was reading when ``exc`` was raised (the innermost
    frame with a ``filename`` that exists: a base file is read in a nested
    call; the SyntaxError itself says '<unknown>')."""
    found, tb = None, exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_locals.get('filename')
        if isinstance(name, str) and osp.isfile(name):
            found = osp.normpath(name)
        tb = tb.tb_next
    return found
