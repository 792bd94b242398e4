"""Registration on first look-up, so that ``import mmpl`` stays light.

mmengine's :class:`~mmengine.registry.Registry` imports its ``locations``
before the first ``get`` / ``build`` / ``in``; mmpretrain's registries list
``mmpretrain.models`` etc. there. :func:`install` adds
:mod:`mmpl.all_modules` to the locations of every registry of
``mmpretrain.registry``:

* when ``mmpretrain.registry`` is imported later (the usual case: a runner
  imports it when it switches to ``default_scope='mmpretrain'``), through a
  one-shot import hook that runs right after that module;
* when it is imported already, at once; and because one of its registries
  may have imported its locations already (then it would never look at a
  new one), mmpl's modules are then imported at once too.

Either way, a config's ``custom_imports=dict(imports=['mmpl'])`` finds
every mmpl type. Only ``Registry.module_dict`` read directly, without any
look-up first, does not import them: ``import mmpl.all_modules`` does.
"""
import importlib.abc
import importlib.util
import sys
from types import ModuleType

REGISTRY_MODULE = 'mmpretrain.registry'
LOCATION = 'mmpl.all_modules'


def add_location(module: ModuleType) -> bool:
    """Add :data:`LOCATION` to every registry of ``module``; True when one
    of them has imported its locations already (too late to rely on)."""
    from mmengine.registry import Registry
    late = False
    for name in dir(module):
        registry = getattr(module, name)
        if isinstance(registry, Registry) and name.isupper():
            if LOCATION not in registry._locations:
                registry._locations.append(LOCATION)
            late |= registry._imported
    return late


class _Loader(importlib.abc.Loader):
    """``mmpretrain.registry``'s own loader, then :func:`add_location`."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        add_location(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``mmpretrain.registry`` once, through the other finders, and
    wraps its loader."""

    def find_spec(self, fullname, path, target=None):
        if fullname != REGISTRY_MODULE:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Make mmpretrain's registries import mmpl's modules (idempotent)."""
    module = sys.modules.get(REGISTRY_MODULE)
    if module is not None:
        if add_location(module):
            importlib.import_module(LOCATION)
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
