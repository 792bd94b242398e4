"""File helpers."""
import json
import os
import os.path as osp
import tempfile
from typing import Any

from .errors import ConfigError, ExistingFileError


def check_new_file(path: str, option: str) -> None:
    """Before any work: ``path`` (the value of a tool's ``option``, e.g.
    ``--out``) must be a new file in an existing, writable folder, so that
    results are never lost after the work and never written over a file."""
    if osp.exists(path):
        raise ExistingFileError(
            f'{option} {path!r} exists. Choose another file or remove it '
            '(mmpl never writes over a file)')
    folder = osp.dirname(osp.abspath(path))
    if osp.exists(folder) and not osp.isdir(folder):
        raise ConfigError(f'{option} {path!r}: {folder} is a file, not a '
                          'folder. Choose another path')
    if not osp.isdir(folder):
        raise ConfigError(
            f'{option} {path!r}: its folder {folder} does not exist. Create '
            'it first or choose another path')
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f'{option} {path!r}: {folder} is not writable. '
                          'Choose another path')


def write_json_atomic(path: str, payload: Any, replace: bool) -> bool:
    """Write ``payload`` as JSON to ``path`` so that no reader ever sees a
    half-written file.

    Args:
        path: the file; its folder is created.
        payload: JSON-serialisable data.
        replace: replace an existing file (``os.replace``); with False an
            existing file is kept, also one another process writes at the
            same time (the first writer wins).

    Returns:
        Whether this call wrote ``path``.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.mmpl-', suffix='.json', dir=folder)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            json.dump(payload, f, indent=1)
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # atomic, fails if it exists
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system
            try:
                with open(path, 'x', encoding='utf-8') as f:
                    json.dump(payload, f, indent=1)
                return True
            except FileExistsError:
                return False
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


#: the list of files mmpl's tools wrote in a folder (JSON), so that a tool
#: writing into a folder it did not create replaces only its own files
OUTPUTS_FILE = '.mmpl_outputs.json'


def written_outputs(out_dir: str) -> set:
    """Names of the files mmpl's tools wrote in ``out_dir``."""
    try:
        with open(osp.join(out_dir, OUTPUTS_FILE)) as f:
            names = json.load(f)
    except (OSError, ValueError):
        return set()
    return {n for n in names if isinstance(n, str)} \
        if isinstance(names, list) else set()


def check_outputs(out_dir: str, names, option: str) -> None:
    """Before any work: ``out_dir`` (a tool's ``option``) is a folder or
    does not exist yet, and each of ``names`` in it is new or was written
    there by an mmpl tool (:func:`mark_outputs`): nothing a user wrote is
    replaced."""
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise ConfigError(f'{option} {out_dir!r} is a file, not a folder. '
                          'Choose a folder')
    ours = written_outputs(out_dir)
    for name in names:
        path = osp.join(out_dir, name)
        if osp.exists(path) and name not in ours:
            raise ExistingFileError(
                f'{path} exists and was not written by mmpl. Choose another '
                f'{option} or move the file (mmpl never replaces a file it '
                'did not write)')


def mark_outputs(out_dir: str, names) -> None:
    """Record ``names`` as written by mmpl in ``out_dir``."""
    ours = sorted(written_outputs(out_dir) | set(names))
    write_json_atomic(osp.join(out_dir, OUTPUTS_FILE), ours, replace=True)


def adopt_outputs(out_dir: str, names, made_by: str) -> None:
    """Count the existing ``names`` in ``out_dir`` as mmpl's when the folder
    holds ``made_by`` (a path only the same tool creates there) and no list
    of outputs yet: folders a tool wrote before :func:`mark_outputs`
    existed."""
    if osp.exists(osp.join(out_dir, made_by)) and \
            not written_outputs(out_dir):
        mark_outputs(out_dir, [n for n in names
                               if osp.isfile(osp.join(out_dir, n))])
