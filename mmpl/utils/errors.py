"""mmpl's errors for a wrong user input, and the one-line report of them.

Everything mmpl raises *on purpose* because a config, a command line, a
dataset folder or a checkpoint is wrong is an :class:`MMPLError`: the tools
print it as one line (``mmpl: error: ...``, exit status 2) through
:func:`run_cli`. Anything else is a bug, or a failure mmpl did not foresee,
and keeps its full traceback: the type decides, never where the exception
was raised.

Each subclass also derives from the built-in exception a caller would
expect (``ValueError``, ``FileNotFoundError``, ``RuntimeError``), so
``except ValueError`` and ``pytest.raises(ValueError)`` keep working.

mmengine's registry re-raises a constructor's error as
``type(e)('class `X` in path.py: ...')``, the same type with a prefix;
:func:`user_error_message` drops the prefix. An unknown type name in a
config (mmengine's ``KeyError: '... is not in the ... registry'``) counts as
a user error too.

``MMPL_DEBUG=1`` in the environment makes :func:`run_cli` re-raise user
errors too, with their full traceback.
"""
import os
import re
import sys
from typing import Callable, Optional


class MMPLError(Exception):
    """Base class: a user input mmpl refuses, with what to do about it."""


class ConfigError(MMPLError, ValueError):
    """A config value or a command-line option is invalid or inconsistent
    (an unknown choice, a count below 1, a combination that cannot work)."""


class DataError(MMPLError, ValueError):
    """A dataset on disk does not match the layout or the class set its
    reader expects."""


class MissingFileError(MMPLError, FileNotFoundError):
    """A file or folder named by the input (config, checkpoint, dataset
    root, split file) does not exist."""


class ExistingFileError(MMPLError, FileExistsError):
    """A folder or file mmpl would write already holds something it must
    not overwrite (user data, or a result without ``overwrite=True``)."""


class CheckpointError(MMPLError, ValueError):
    """A checkpoint does not fit the model it is loaded into."""


class CLIPBuildError(MMPLError, ValueError):
    """A CLIP model cannot be built as configured (architecture, weights,
    activation)."""


class LaunchError(MMPLError, RuntimeError):
    """The launcher, runner or strategy does not fit the hardware or the
    process environment."""


class TrainingStopped(MMPLError, RuntimeError):
    """Training was stopped on purpose (e.g. a non-finite loss), with the
    checkpoint to resume from."""


_PREFIX = re.compile(r'^(class `[^`]+` in [^:]+: )+')


def _is_registry_miss(exc: BaseException) -> bool:
    return isinstance(exc, KeyError) and 'registry' in str(exc)


def user_error_message(exc: BaseException) -> Optional[str]:
    """The one line to print when ``exc`` is a user error (an
    :class:`MMPLError` or an unknown registry name, as raised or as
    re-raised by mmengine's registry); None for anything else, also for an
    exception raised while handling a user error."""
    if not (isinstance(exc, MMPLError) or _is_registry_miss(exc)):
        return None
    msg = str(exc.args[0]) if exc.args else ''
    msg = _PREFIX.sub('', msg)
    if _is_registry_miss(exc):
        msg = (msg.split('. Please check')[0] + '; check the type name '
               "(mmpl modules need custom_imports=dict(imports=['mmpl'])).")
    return msg.splitlines()[0] if msg else type(exc).__name__


def debug_enabled() -> bool:
    """Whether ``MMPL_DEBUG`` asks for full tracebacks (set, and not
    ``0``/``false``/empty)."""
    return os.environ.get('MMPL_DEBUG', '').lower() not in ('', '0', 'false')


def run_cli(main: Callable[..., int], *args, **kwargs) -> int:
    """Call a tool's ``main``; print a user error as ``mmpl: error: ...``
    and return 2, let every other exception propagate with its
    traceback (user errors too under ``MMPL_DEBUG=1``)."""
    try:
        return main(*args, **kwargs)
    except Exception as exc:
        msg = user_error_message(exc)
        if msg is None or debug_enabled():
            raise
        print(f'mmpl: error: {msg}', file=sys.stderr)
        return 2
