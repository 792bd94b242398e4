"""Errors raised by the CLIP adapter (one actionable line each): part of
mmpl's hierarchy, defined in :mod:`mmpl.utils.errors`."""
from ..utils.errors import CLIPBuildError

__all__ = ['CLIPBuildError']
