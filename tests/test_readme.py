"""The README's commands and its mixing config work as written (the ones
that run offline; the others name files that exist)."""
import os.path as osp
import re
import shlex

import pytest

from helpers import load_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
README = open(osp.join(ROOT, 'README.md'), encoding='utf-8').read()


def _blocks(lang: str):
    return re.findall(rf'```{lang}\n(.*?)```', README, flags=re.S)


def _commands():
    """Every ``python tools/...`` / ``bash tools/...`` line of the bash
    blocks, continuation lines joined, comments dropped."""
    out = []
    for block in _blocks('bash'):
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.split(' #')[0].strip()
            if not re.match(r'([A-Z_]+=\S+ )*(python|bash) tools/', line):
                continue
            words = shlex.split(line)
            while words and '=' in words[0]:  # GPUS=8 bash ...
                words = words[1:]
            if len(words) > 1 and words[0] in ('python', 'bash') and \
                    words[1].startswith('tools/'):
                out.append(words)
    return out


def test_every_tool_the_readme_names_exists():
    commands = _commands()
    assert len(commands) > 10
    for words in commands:
        assert osp.isfile(osp.join(ROOT, words[1])), words


def test_readme_says_how_to_run_the_environments_python():
    assert '.venv/bin/python' in README and 'source .venv/bin/activate' \
        in README and 'MMPL_DEBUG=1' in README


def test_readme_smoke_command_names_a_smoked_config():
    """(tests/test_configs.py smokes every b2n config through the same
    ``mmpl.testing.smoke`` as tools/misc/smoke.py.)"""
    smoke = [w for w in _commands() if w[1] == 'tools/misc/smoke.py']
    assert smoke and all(osp.isfile(osp.join(ROOT, w[2])) and
                         '_b2n_' in w[2] for w in smoke)


def test_readme_mixing_config_trains_on_generated_data(tmp_path):
    from mmpl.testing import smoke
    section = README.split('### Mixing mmpl into your own mmpretrain '
                           'config')[1]
    config = re.search(r'```python\n(.*?)```', section, flags=re.S).group(1)
    path = tmp_path / 'my_config.py'
    path.write_text(config)
    metrics = smoke(str(path), str(tmp_path / 'work'))
    assert set(metrics) >= {'base/accuracy/top1', 'new/accuracy/top1',
                            'harmonic_mean'}


@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py'])
def test_readme_train_test_options_parse(tool):
    parse = load_tool(tool).parse_args
    for words in _commands():
        if words[1] == tool and 'CONFIG' not in words:
            parse(words[2:])


@pytest.mark.heavy
def test_readme_quoted_cfg_options_example_runs(tmp_path):
    """The README's example of a quoted --cfg-options value, on the CoOp
    config, through tools/misc/smoke.py (offline, tiny CLIP)."""
    found = re.search(r'`(--cfg-options [^`]*ctx_init="a photo of a")`',
                      README)
    assert found, 'the quoted --cfg-options example is gone'
    smoke = load_tool('tools/misc/smoke.py')
    argv = [osp.join(ROOT, 'configs/coop/coop_vitb16_b2n_eurosat.py'),
            '--work-dir', str(tmp_path)] + shlex.split(found.group(1))
    assert smoke.main(argv) == 0
