"""Test support, as ``mmengine.testing``: fake data in each reader's real
on-disk layout (:mod:`.miniature`) and the rewrite that runs any config
offline on it (:mod:`.offline`), for the test suite and
``tools/misc/smoke.py``. Nothing here is part of a benchmark protocol."""
from .miniature import (MARKER, MINIATURE_WRITERS, register_writer,
                        write_miniature)
from .offline import (TINY_ARCH, TINY_CLIP, make_offline, offline_options,
                      register_tiny_arch)
from .smoke import smoke

__all__ = [
    'MARKER', 'MINIATURE_WRITERS', 'register_writer', 'write_miniature',
    'TINY_ARCH', 'TINY_CLIP', 'make_offline', 'offline_options',
    'register_tiny_arch', 'smoke'
]
