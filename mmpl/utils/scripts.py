"""Import a script under tools/ (not a package) as a module, so that one
tool can call another's functions and tests can call a tool's ``main``."""
import importlib.util
import os.path as osp
from types import ModuleType
from typing import Optional


def load_script(path: str, name: Optional[str] = None) -> ModuleType:
    """Execute the Python file ``path`` as a fresh module named ``name``
    (default: derived from the path)."""
    name = name or 'mmpl_script_' + osp.splitext(
        osp.abspath(path))[0].strip(osp.sep).replace(osp.sep, '_')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
