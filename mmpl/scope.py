"""The ``mmpl::`` config scope, set up by ``import mmpl`` (imports only
mmengine's config package, so that ``import mmpl`` stays light).

* mmengine resolves ``<scope>::<path>`` through its ``MODULE2PACKAGE`` table
  to ``<package dir>/.mim/configs/<path>`` (the ``.mim`` folder setup.py
  fills: symlinks in an editable install, copies in a wheel); ``mmpl`` is
  added to the table here.
* In an editable install made by pip / setuptools >= 64 the package is found
  through an import hook, and mmengine's ``get_installed_path`` would look
  in ``site-packages/mmpl``, which does not exist; for ``mmpl`` only, the
  lookup then returns this package's directory.
"""
import os.path as osp

PACKAGE_DIR = osp.dirname(osp.abspath(__file__))


def register_config_scope() -> None:
    """Make ``mmpl::`` config bases resolve (idempotent)."""
    from mmengine.config import config as _config
    from mmengine.config import utils as _config_utils
    _config_utils.MODULE2PACKAGE.setdefault('mmpl', 'mmpl')
    lookup = _config.get_installed_path
    if getattr(lookup, '_mmpl', False):
        return

    def get_installed_path(package: str) -> str:
        path = lookup(package)
        if package == 'mmpl' and not osp.isdir(path):
            return PACKAGE_DIR  # editable install (import hook)
        return path

    get_installed_path._mmpl = True
    _config.get_installed_path = get_installed_path
