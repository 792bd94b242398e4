"""File helpers."""
import json
import os
import os.path as osp
import tempfile
from typing import Any


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
