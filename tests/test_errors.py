"""The user-error rule: the type decides, never where it was raised."""
import pytest
from mmengine.registry import Registry, build_from_cfg

from mmpl.clip import CLIPBuildError
from mmpl.utils.errors import (ConfigError, MissingFileError, MMPLError,
                               run_cli, user_error_message)

TOYS = Registry('toy')


@TOYS.register_module()
class Toy:

    def __init__(self, size: int = 1):
        if size < 1:
            raise ConfigError(f'Toy: size must be >= 1, got {size}')
        self.size = size


def _raise(exc):
    raise exc


def test_typed_errors_are_the_builtin_types_callers_expect():
    assert issubclass(ConfigError, ValueError)
    assert issubclass(MissingFileError, FileNotFoundError)
    assert issubclass(CLIPBuildError, MMPLError)  # mmpl.clip re-exports it


def test_mmpl_error_is_one_line_with_exit_2(capsys):
    assert run_cli(_raise, MissingFileError('config not found: x.py\nmore')) \
        == 2
    assert capsys.readouterr().err == 'mmpl: error: config not found: x.py\n'


def test_registry_rewrap_keeps_the_type_and_drops_the_prefix():
    with pytest.raises(ConfigError) as info:
        build_from_cfg(dict(type='Toy', size=0), TOYS)
    assert user_error_message(info.value) == 'Toy: size must be >= 1, got 0'


def test_unknown_registry_name_is_a_user_error():
    with pytest.raises(KeyError) as info:
        build_from_cfg(dict(type='Nope'), TOYS)
    message = user_error_message(info.value)
    assert 'Nope' in message and 'check the type name' in message


@pytest.mark.parametrize('bug', [ValueError('x'), KeyError('label 3'),
                                 TypeError('y'), RuntimeError('z')])
def test_anything_else_keeps_its_traceback(bug):
    assert user_error_message(bug) is None
    with pytest.raises(type(bug)):
        run_cli(_raise, bug)


def test_a_bug_while_handling_a_user_error_is_a_bug():
    try:
        try:
            raise ConfigError('bad value')
        except ConfigError:
            raise ValueError('bug in the handler')
    except ValueError as exc:
        assert user_error_message(exc) is None
