"""Option checks with one wording, used by every module (a leaf: imports
only :mod:`mmpl.utils.errors`)."""
from typing import Any, Optional, Sequence

from .errors import ConfigError


def check_choice(name: str, value: Any, choices: Sequence,
                 owner: Optional[str] = None) -> None:
    """Raise :class:`ConfigError` (a ValueError) unless ``value`` is one of
    ``choices``.

    Args:
        name: the option's name, as the user wrote it.
        value: the given value.
        choices: the allowed values.
        owner: the module's name, prefixed to the message (``'TVP: ...'``).
    """
    if value not in choices:
        prefix = f'{owner}: ' if owner else ''
        raise ConfigError(f'{prefix}{name} must be one of {tuple(choices)}, '
                         f'got {value!r}. Choose one of them')


def check_seeds(name: str, seeds: Sequence[int]) -> None:
    """Raise :class:`ConfigError` unless ``seeds`` are distinct ints >= 0
    (a command line's list of seeds)."""
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0
           for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f'{name} must be distinct integers >= 0, got '
                          f'{list(seeds)}. Give e.g. {name} 1 2 3')


def check_int(name: str, value: Any, minimum: int = 1,
              owner: Optional[str] = None) -> None:
    """Raise :class:`ConfigError` (a ValueError) unless ``value`` is an int
    (not a bool) >= ``minimum``.

    Args:
        name: the option's name, as the user wrote it.
        value: the given value.
        minimum: the smallest allowed value [1].
        owner: the module's name, prefixed to the message.
    """
    if isinstance(value, bool) or not isinstance(value, int) \
            or value < minimum:
        prefix = f'{owner}: ' if owner else ''
        raise ConfigError(f'{prefix}{name} must be an integer >= {minimum}, '
                         f'got {value!r}. Set it to one')


def check_device(device: Any) -> None:
    """Raise :class:`ConfigError` unless ``device`` is a torch device this
    machine has (``cpu``, ``cuda``, ``cuda:N`` with a visible GPU N)."""
    import torch
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f'device {device!r} is not a torch device. Use '
                          'cpu, cuda or cuda:N') from None
    if parsed.type != 'cuda':
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not count:
        raise ConfigError(f'device {device!r} needs a CUDA GPU and this '
                          'machine has none. Use cpu')
    if parsed.index is not None and parsed.index >= count:
        raise ConfigError(f'device {device!r}: this machine has {count} '
                          f'CUDA GPU(s), cuda:0..cuda:{count - 1}. Choose one '
                          'of them')
