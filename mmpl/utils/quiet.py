"""Quiet runs: third-party messages known to be harmless are dropped once,
and the console shows progress and results (the log file keeps everything).

* :func:`filter_known_warnings` (called by ``import mmpl``): mmcv-lite's
  "Fail to import MultiScaleDeformableAttention" (mmpl needs no
  ``mmcv.ops``, STACK.md) and setuptools' ``pkg_resources`` deprecation
  (mmengine 0.10.7 imports it for ``mmpretrain::`` bases).
* :class:`ConsoleFilter` (on the runner's console handler, see
  :class:`mmpl.apis.launch.QuietRunner`): the environment report, the
  config dump and the hook table, about 150 lines per run, go to the log
  file in the work dir only, as do mmengine's ``FileClient`` deprecation
  notices.
"""
import logging
import warnings

#: (category, message regex) of the warnings dropped at ``import mmpl``
KNOWN_WARNINGS = (
    (UserWarning, r'Fail to import ``MultiScaleDeformableAttention``'),
    (UserWarning, r'pkg_resources is deprecated as an API'),
    (DeprecationWarning, r'pkg_resources is deprecated as an API'),
)

#: starts of the log messages kept out of the console
FILE_ONLY_MESSAGES = (
    'Config:', 'Hooks will be executed in the following order',
    '"FileClient" will be deprecated', '"HardDiskBackend" is the alias',
    'Distributed training is not used, all SyncBatchNorm')


def filter_known_warnings() -> None:
    """Ignore :data:`KNOWN_WARNINGS` (idempotent)."""
    for category, message in KNOWN_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=category)


class ConsoleFilter(logging.Filter):
    """Keep :data:`FILE_ONLY_MESSAGES` and the environment report out of a
    console handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage().lstrip('\n-')
        return not (message.startswith(FILE_ONLY_MESSAGES)
                    or message.startswith('System environment:'))
