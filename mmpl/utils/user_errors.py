"""Tell a user's mistake (one actionable line) from a bug (full traceback).

mmengine's registry re-raises constructor errors as
``type(e)('class `X` in path.py: ...')``; the original exception is its
``__context__``. The innermost exception decides: raised by mmpl's own code
on purpose, or an unknown registry name, is a user error.
"""
import os.path as osp
import re
import traceback

_PKG_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
_PREFIX = re.compile(r'^(class `[^`]+` in [^:]+: )+')
USER_ERROR_TYPES = (FileNotFoundError, NotADirectoryError, ValueError,
                    KeyError, TypeError, RuntimeError)


def _innermost(exc: BaseException) -> BaseException:
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__
        if inner is None and not exc.__suppress_context__:
            inner = exc.__context__
        if inner is None or not isinstance(inner, USER_ERROR_TYPES):
            break
        exc = inner
    return exc


def _raised_in(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return osp.abspath(frames[-1].filename) if frames else ''


def raised_in(exc: BaseException, filename: str) -> bool:
    """Whether ``exc`` was raised by the code of ``filename`` itself (a
    tool's own checks of its command line)."""
    where = _raised_in(exc)  # '' or a frame's file (maybe '<string>')
    return bool(where) and where == osp.abspath(filename)


def is_user_error(exc: BaseException) -> bool:
    """Errors mmpl raises on purpose for bad input, and unknown registry
    names (mmengine's ``... is not in the ... registry``)."""
    inner = _innermost(exc)
    if not isinstance(inner, USER_ERROR_TYPES):
        return False
    if isinstance(inner, KeyError) and 'registry' in str(inner):
        return True
    return _raised_in(inner).startswith(_PKG_DIR + osp.sep)


def user_error_message(exc: BaseException) -> str:
    """The one line to print for a user error."""
    inner = _innermost(exc)
    msg = str(inner.args[0]) if inner.args else str(inner)
    msg = _PREFIX.sub('', msg)
    if isinstance(inner, KeyError) and 'registry' in msg:
        msg = (msg.split('. Please check')[0] + '; check the type name '
               "(mmpl modules need custom_imports=dict(imports=['mmpl'])).")
    return msg.splitlines()[0] if msg else type(inner).__name__
