"""The ``mmpl`` scope, as OpenMMLab packages have one.

mmpl registers its modules into mmpretrain's registries (configs keep
``default_scope = 'mmpretrain'``). This module makes ``mmpl::`` config
bases work once ``mmpl`` is imported (mmpl's tools import it before reading
a config)::

    _base_ = ['mmpl::mpl/ftp_tvp_vitb16_b2n_eurosat.py']

* mmengine resolves ``<scope>::<path>`` through its ``MODULE2PACKAGE`` table
  to ``<package dir>/.mim/configs/<path>`` (the ``.mim`` folder setup.py
  fills: symlinks in an editable install, copies in a wheel); ``mmpl`` is
  added to the table here.
* In an editable install made by pip / setuptools >= 64 the package is found
  through an import hook, and mmengine's ``get_installed_path`` would look
  in ``site-packages/mmpl``, which does not exist; for ``mmpl`` only, the
  lookup then returns this package's directory.
* mmengine gives every dict of a ``mmpl::`` base ``_scope_='mmpl'`` and
  builds it in the registry of scope ``mmpl``: the children below (of
  mmpretrain's registries, which hold mmpl's modules) are those registries,
  so nothing is rebuilt in another place and no fallback warning is printed.
"""
import os.path as osp

from mmengine.registry import Registry
from mmpretrain import registry as _mmpretrain

PACKAGE_DIR = osp.dirname(osp.abspath(__file__))

__all__ = ['PACKAGE_DIR']
for _name in dir(_mmpretrain):
    _parent = getattr(_mmpretrain, _name)
    if isinstance(_parent, Registry) and _name.isupper():
        globals()[_name] = _parent._children.get('mmpl') or Registry(
            _parent.name, parent=_parent, scope='mmpl',
            # the parent's lazy imports too: a child looks up its parent's
            # modules without running the parent's imports
            locations=list(_parent._locations) + ['mmpl'])
        __all__.append(_name)


def _register_config_scope() -> None:
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


_register_config_scope()
