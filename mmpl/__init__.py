"""mmpl: CLIP prompt learning for OpenMMLab.

Importing ``mmpl`` registers every module (datasets, prompt learners,
classifier, losses, loops, hooks, metrics) into mmpretrain's registries, so a
config only needs ``custom_imports = dict(imports=['mmpl'])`` and keeps
``default_scope = 'mmpretrain'``.
"""
from .utils.quiet import filter_known_warnings

filter_known_warnings()  # before mmcv / mmengine are imported

from .version import __version__  # noqa: E402
from . import registry  # noqa: F401,E402  (the mmpl scope, `mmpl::` configs)
from . import datasets  # noqa: F401,E402  (registers DATASETS)
from . import clip  # noqa: F401,E402
from . import prompts  # noqa: F401,E402  (registers MODELS)
from . import models  # noqa: F401,E402  (registers MODELS)
from . import losses  # noqa: F401,E402  (registers MODELS)
from . import evaluation  # noqa: F401,E402  (registers METRICS)
from . import engine  # noqa: F401,E402  (registers LOOPS, HOOKS)

__all__ = ['__version__']
