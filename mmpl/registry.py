"""The ``mmpl`` scope, as OpenMMLab packages have one.

mmpl registers its modules into mmpretrain's registries (configs keep
``default_scope = 'mmpretrain'``). This module makes ``mmpl::`` config
bases work once ``mmpl`` is imported (mmpl's tools import it before reading
a config)::

    _base_ = ['mmpl::mpl/ftp_tvp_vitb16_b2n_eurosat.py']

* the config side (``MODULE2PACKAGE``, editable installs) is
  :mod:`mmpl.scope`, run by ``import mmpl`` itself;
* mmengine gives every dict of a ``mmpl::`` base ``_scope_='mmpl'`` and
  builds it in the registry of scope ``mmpl``: the children below (of
  mmpretrain's registries, which hold mmpl's modules) are those registries,
  so nothing is rebuilt in another place and no fallback warning is printed.
"""
from mmengine.registry import Registry
from mmpretrain import registry as _mmpretrain

from .scope import PACKAGE_DIR, register_config_scope

__all__ = ['PACKAGE_DIR']
for _name in dir(_mmpretrain):
    _parent = getattr(_mmpretrain, _name)
    if isinstance(_parent, Registry) and _name.isupper():
        globals()[_name] = _parent._children.get('mmpl') or Registry(
            _parent.name, parent=_parent, scope='mmpl',
            # the parent's lazy imports too: a child looks up its parent's
            # modules without running the parent's imports
            # and mmpl's modules (mmpl.lazy_registration)
            locations=list(dict.fromkeys(list(_parent._locations) +
                                         ['mmpl.all_modules'])))
        __all__.append(_name)


register_config_scope()  # also when this module is imported on its own
