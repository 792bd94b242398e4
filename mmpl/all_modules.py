"""Importing this module registers every mmpl type (datasets, prompt
learners, classifier, losses, loops, hooks, metrics) into mmpretrain's
registries and creates the ``mmpl`` scope's child registries.

``import mmpl`` does not import it (that would cost torchvision, open_clip
and mmengine's model package, about 2 s): it adds this module to the
import locations of mmpretrain's registries instead (see
:mod:`mmpl.lazy_registration`), so that the first look-up in any of them,
e.g. a runner building a config with ``custom_imports=dict(imports=
['mmpl'])``, imports it first.
"""
from . import (clip, datasets, engine, evaluation, losses, models, prompts,
               registry)
from .evaluation import predictions  # METRICS (mmpl.evaluation stays light)

# registry: the mmpl scope (`mmpl::` configs); datasets: DATASETS;
# prompts, models, losses: MODELS; evaluation: METRICS; engine: LOOPS, HOOKS
__all__ = ['registry', 'datasets', 'clip', 'prompts', 'models', 'losses',
           'evaluation', 'predictions', 'engine']
