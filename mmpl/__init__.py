"""mmpl: CLIP prompt learning for OpenMMLab.

``import mmpl`` makes every mmpl module (datasets, prompt learners,
classifier, losses, loops, hooks, metrics) available in mmpretrain's
registries, so a config only needs ``custom_imports = dict(imports=['mmpl'])``
and keeps ``default_scope = 'mmpretrain'``. It stays light (about the cost
of mmengine's config package): the modules are imported on the first
registry look-up (:mod:`mmpl.lazy_registration`), or by
``import mmpl.all_modules``; ``mmpl.<subpackage>`` imports a sub-package
on first use.
"""
import importlib

from .utils.quiet import filter_known_warnings

filter_known_warnings()  # before mmcv / mmengine are imported

from .lazy_registration import install as _install_registration  # noqa: E402
from .scope import register_config_scope  # noqa: E402
from .version import __version__  # noqa: E402

register_config_scope()  # `mmpl::` config bases
_install_registration()  # mmpl's types in mmpretrain's registries

__all__ = ['__version__']

_SUBPACKAGES = ('all_modules', 'apis', 'benchmark', 'clip', 'datasets',
                'engine', 'evaluation', 'losses', 'models', 'prompts',
                'registry', 'structures', 'testing', 'utils')


def __getattr__(name: str):
    """``mmpl.clip`` etc. without an explicit ``import mmpl.clip``."""
    if name in _SUBPACKAGES:
        return importlib.import_module(f'{__name__}.{name}')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
