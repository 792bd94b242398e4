"""Errors raised by the CLIP adapter (one actionable line each)."""


class CLIPBuildError(ValueError):
    """A CLIP model cannot be built as configured."""
