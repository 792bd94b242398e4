"""mmpl: CLIP prompt learning for OpenMMLab.

Importing ``mmpl`` registers every module (datasets, prompt learners,
classifier, losses, loops, hooks, metrics) into mmpretrain's registries, so a
config only needs ``custom_imports = dict(imports=['mmpl'])`` and keeps
``default_scope = 'mmpretrain'``.
"""
from .version import __version__
from . import registry  # noqa: F401  (the mmpl scope, `mmpl::` configs)
from . import datasets  # noqa: F401  (registers DATASETS)
from . import clip  # noqa: F401
from . import prompts  # noqa: F401  (registers MODELS)
from . import models  # noqa: F401  (registers MODELS)
from . import losses  # noqa: F401  (registers MODELS)
from . import evaluation  # noqa: F401  (registers METRICS)
from . import engine  # noqa: F401  (registers LOOPS, HOOKS)

__all__ = ['__version__']
