"""The GPU check (issue 35), on CPU: its plan, its report, its fallbacks,
the wheelhouse it installs from, and the whole script in its small CPU
form (``gpu_check.sh OUT --device cpu --quick``)."""
import json
import os
import os.path as osp
import re
import subprocess
import sys
from dataclasses import asdict
from importlib import metadata

import pytest
import torch

from mmpl_lab import gpu_check as check
from helpers import FAMILY_CONFIGS, ROOT, load_tool

installer = load_tool('projects/lab/tools/install_wheels.py')
WHEEL_LIST = osp.join(ROOT, 'projects/lab/gpu-wheels.txt')


def test_the_check_covers_every_family_the_cuda_tests_train():
    assert check.FAMILIES == FAMILY_CONFIGS
    assert set(check.TEXT_HEAVY) < set(check.FAMILIES)


def test_plan_runs_the_probe_target_first_then_the_reference():
    settings = check.settings_for('cuda')
    runs = check.plan_benchmarks(settings)
    heavy = len(check.TEXT_HEAVY)
    first = runs[:heavy]  # AMP, C=1000, text-heavy: the 40 % target
    assert [r.family for r in first] == list(check.TEXT_HEAVY)
    assert all(r.amp and not r.reference and r.num_classes == 1000
               for r in first)
    fp32 = [r for r in runs if not r.amp]
    assert all(r.reference for r in fp32)  # fp32 always against it
    assert {r.family for r in fp32 if r.num_classes == 50} == set(
        check.FAMILIES)
    assert {r.family for r in fp32 if r.num_classes == 1000} == set(
        check.TEXT_HEAVY)
    assert len({r.name for r in runs}) == len(runs)
    argv = first[0].argv(settings, 'x.json')
    assert argv[argv.index('--arch') + 1] == 'ViT-B-16'
    assert argv[argv.index('--batch-size') + 1] == '4'
    assert argv[argv.index('--device') + 1] == 'cuda'
    assert '--amp' in argv and '--in-process' in argv
    assert '--reference' not in argv


def _junit(path, cases):
    body = []
    for module, name, kind, message in cases:
        inner = '' if kind == 'passed' else \
            f'<{kind} message="{message}">detail</{kind}>'
        body.append(f'<testcase classname="{module}" name="{name}" '
                    f'time="0.5">{inner}</testcase>')
    path.write_text('<?xml version="1.0"?><testsuites><testsuite>'
                    + ''.join(body) + '</testsuite></testsuites>')
    return str(path)


def test_test_results_per_function_and_the_amp_verdict(tmp_path):
    cases = check.parse_junit(_junit(tmp_path / 'j.xml', [
        ('tests.test_cuda', 'test_training_step[cuda-coop-bf16]', 'passed',
         ''),
        ('tests.test_cuda', 'test_training_step[cuda-coop-fp16]', 'failure',
         'assert nan'),
        ('tests.test_cuda', 'test_training_step[cuda-coop-fp32]', 'passed',
         ''),
        ('tests.test_cuda', 'test_training_step[cpu-coop-fp16]', 'skipped',
         'cpu'),
    ]))
    assert [c['outcome'] for c in cases] == ['passed', 'failed', 'passed',
                                             'skipped']
    assert cases[1]['message'] == 'assert nan'
    assert check.test_summary(cases) == {
        'tests.test_cuda::test_training_step':
            dict(passed=2, failed=1, skipped=1)}
    verdict = check.amp_verdict(dict(cases=cases))
    assert verdict.startswith('1 of 2 AMP cases passed')
    assert 'cuda-coop-fp16' in verdict
    assert check.amp_verdict(dict(cases=cases[3:])) == 'not run (skipped)'


def _bench_report(probe_bf16=1000.0, achieved=450.0):
    result = dict(phase='train', formulation='mmpl', images_per_s=10.0,
                  peak_bytes=3 * check.MiB, working_bytes=2 * check.MiB,
                  achieved_gflops=achieved, probe_fraction=0.5,
                  compute_dtype='float16',
                  probe_gflops=dict(float16=900.0, bfloat16=probe_bf16,
                                    float32=100.0))
    return dict(results=[result], ratios=dict(train=dict(speedup=3.0)))


def test_benchmark_rows_and_the_probe_target():
    run = check.BenchRun('coop', 1000, True, False, 2)
    ok = dict(run=asdict(run), name=run.name, status='ok',
              report=_bench_report())
    [row] = check.benchmark_rows(ok)
    assert row['bf16_probe_fraction'] == pytest.approx(0.45)
    assert row['speedup'] == 3.0 and row['peak_mib'] == 3
    low = dict(ok, report=_bench_report(achieved=100.0))
    other = check.BenchRun('coop', 50, True, False, 2)
    small = dict(ok, run=asdict(other))  # not at C=1000: no target
    assert check.probe_targets([ok, low, small], 1000) == [
        dict(family='coop', fraction=pytest.approx(0.45), met=True),
        dict(family='coop', fraction=pytest.approx(0.1), met=False)]
    failed = dict(run=asdict(run), name=run.name, status='failed',
                  error='RuntimeError: boom')
    [row] = check.benchmark_rows(failed)
    assert row['note'] == 'RuntimeError: boom'


class _FakeTool:
    """The benchmark tool's ``main``: out of memory with --reference."""

    def __init__(self, error=None):
        self.calls, self.error = [], error

    def main(self, argv):
        self.calls.append(argv)
        if '--reference' in argv:
            raise torch.OutOfMemoryError('CUDA out of memory. Tried ...')
        if self.error:
            raise self.error
        with open(argv[argv.index('--out') + 1], 'w') as f:
            json.dump(_bench_report(), f)
        return 0


def test_a_reference_out_of_memory_is_measured_without_it(tmp_path):
    settings = check.settings_for('cpu', quick=True)
    run = check.BenchRun('cocoop', 9, False, True, 1)
    tool = _FakeTool()
    with open(tmp_path / 'log', 'w') as log:
        result = check.run_benchmark(run, settings, str(tmp_path), log, tool)
    assert ['--reference' in argv for argv in tool.calls] == [True, False]
    assert result['status'] == 'ok'
    assert result['reference'] == 'out of memory'
    [row] = check.benchmark_rows(result)
    assert row['note'] == 'reference: out of memory'
    tool = _FakeTool(error=ValueError('bad shape'))
    with open(tmp_path / 'log', 'w') as log:
        result = check.run_benchmark(run, settings, str(tmp_path), log, tool)
    assert result['status'] == 'failed'
    assert result['error'] == 'ValueError: bad shape'


def test_runs_past_the_budget_are_recorded_as_skipped(tmp_path, monkeypatch):
    settings = check.settings_for('cpu', quick=True, budget_s=0.0)
    report = check.run_check(str(tmp_path / 'out'), settings, 'cmd',
                          steps=('benchmarks', ),
                          work_dir=str(tmp_path / 'work'))
    statuses = {b['status'] for b in report.data['benchmarks']}
    assert statuses == {'skipped: past the 0 s budget'}
    assert len(report.data['benchmarks']) == len(
        check.plan_benchmarks(settings))
    assert report.failures() == []
    text = (tmp_path / 'out' / 'gpu_check.md').read_text()
    assert 'skipped: past the 0 s budget' in text and 'not run' in text


# ------------------------------------------------------------ the wheelhouse
def _pins() -> dict:
    pins = {}
    for line in open(WHEEL_LIST):
        line = line.split('#', 1)[0].strip()
        if line:
            name, version = line.split('==')
            pins[installer.canonical(name)] = version
    return pins


def test_the_wheel_list_pins_the_tested_stack():
    """Every wheel of ``make wheelhouse-gpu`` at the version installed by
    ``make env`` (the tested one)."""
    for name, version in _pins().items():
        assert metadata.version(name) == version, name


def test_the_wheel_list_is_closed_under_requirements():
    """What the listed distributions require is listed, or is what the
    GPU machine must have (``install_wheels.PROVIDED``)."""
    pins = _pins()
    provided = {installer.canonical(n) for n in installer.PROVIDED}
    # mmpretrain requires 'modelindex', a placeholder distribution; the
    # module comes from model-index
    aliases = {'modelindex': 'model-index'}
    for name in pins:
        for requirement in metadata.requires(name) or []:
            if 'extra ==' in requirement:
                continue
            marker = requirement.split(';', 1)[1] if ';' in requirement \
                else ''
            if 'win32' in marker or "< '3.11'" in marker.replace('"', "'"):
                continue
            dep = installer.canonical(
                re.match(r'[A-Za-z0-9_.\-]+', requirement).group())
            dep = aliases.get(dep, dep)
            assert dep in pins or dep in provided, f'{name} needs {dep}'


def test_the_installer_keeps_what_the_machine_has():
    have = {'torch': '2.11.0', 'mmengine': '0.10.7', 'setuptools': '82.0.1'}
    wheels = ['w/mmengine-0.10.7-py3-none-any.whl',
              'w/ftfy-6.3.1-py3-none-any.whl',
              'w/setuptools-80.10.2-py3-none-any.whl',
              'w/mmcv_lite-2.2.0-py2.py3-none-any.whl']
    install, skipped = installer.choose(wheels, have.get)
    assert install == ['w/ftfy-6.3.1-py3-none-any.whl',
                       'w/mmcv_lite-2.2.0-py2.py3-none-any.whl',
                       'w/setuptools-80.10.2-py3-none-any.whl']
    assert skipped == {'mmengine': '0.10.7 installed'}
    have['setuptools'] = '80.9.0'  # has pkg_resources: kept
    assert 'setuptools' in installer.choose(wheels, have.get)[1]


@pytest.mark.heavy
def test_the_installer_installs_offline_into_a_target(tmp_path):
    """``install_wheels.py`` with a wheelhouse of one wheel this Python
    lacks: pip offline into the target, then the import checks pass."""
    wheelhouse = tmp_path / 'wheels'
    wheelhouse.mkdir()
    # the smallest pure wheel there is: the packaging test's wheelhouse
    # has none this environment lacks, so build one
    _write_wheel(str(wheelhouse), 'mmpl_probe_pkg', '1.0')
    target = tmp_path / 'site'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'projects/lab/tools/'
                                  'install_wheels.py'),
         str(wheelhouse), str(target)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert 'mmpl-probe-pkg==1.0' in proc.stdout
    assert (target / 'mmpl_probe_pkg' / '__init__.py').is_file()


def test_the_installer_unpacks_a_wheel_without_pip(tmp_path):
    """A Python without pip (the installer's fallback): the wheel's
    files, those of ``.data/purelib`` at the top, nothing of ``scripts``."""
    wheel = _write_wheel(str(tmp_path), 'mmpl_probe_pkg', '1.0', extra={
        'mmpl_probe_pkg-1.0.data/purelib/probe_extra.py': b'X = 2\n',
        'mmpl_probe_pkg-1.0.data/scripts/probe-tool': b'#!/bin/sh\n'})
    target = tmp_path / 'site'
    installer.unpack_wheel(wheel, str(target))
    assert (target / 'mmpl_probe_pkg' / '__init__.py').read_text() == \
        'VALUE = 1\n'
    assert (target / 'probe_extra.py').is_file()
    assert (target / 'mmpl_probe_pkg-1.0.dist-info' / 'METADATA').is_file()
    assert not any('probe-tool' in p.name for p in target.rglob('*'))


def _write_wheel(folder: str, name: str, version: str,
                 extra: dict = None) -> str:
    import base64
    import hashlib
    import zipfile
    dist = f'{name}-{version}.dist-info'
    files = {f'{name}/__init__.py': b'VALUE = 1\n',
             f'{dist}/METADATA': (f'Metadata-Version: 2.1\nName: {name}\n'
                                  f'Version: {version}\n').encode(),
             f'{dist}/WHEEL': b'Wheel-Version: 1.0\nGenerator: test\n'
                              b'Root-Is-Purelib: true\nTag: py3-none-any\n',
             **(extra or {})}
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(
            hashlib.sha256(data).digest()).rstrip(b'=').decode()
        record.append(f'{path},sha256={digest},{len(data)}')
    record.append(f'{dist}/RECORD,,')
    path = osp.join(folder, f'{name}-{version}-py3-none-any.whl')
    with zipfile.ZipFile(path, 'w') as zf:
        for name_, data in files.items():
            zf.writestr(name_, data)
        zf.writestr(f'{dist}/RECORD', '\n'.join(record) + '\n')
    return path


# ---------------------------------------------------------- the whole check
@pytest.mark.heavy
def test_the_check_runs_on_cpu_and_writes_its_table(tmp_path):
    """``gpu_check.sh OUT --device cpu --quick --families coop``: the
    tests step (CPU twins), ``dist_train.sh CONFIG 1`` with gloo, and the
    benchmark tool in fp32 against the reference and under AMP; the
    Markdown table and the JSON are written."""
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join(
                   [ROOT, osp.join(ROOT, 'projects', 'lab')]))
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'projects/lab/tools/gpu_check.sh'), str(out),
         '--device', 'cpu', '--quick', '--families', 'coop', '--work-dir',
         str(tmp_path / 'work')], capture_output=True, text=True, env=env,
        cwd=str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    data = json.loads((out / 'gpu_check.json').read_text())
    tests = data['tests']
    assert tests['status'] == 0 and tests['counts']['passed'] >= 2
    assert tests['counts']['failed'] == 0
    dist = data['dist']
    assert dist['status'] == 0 and dist['clean_teardown']
    assert (dist['backend'], dist['world_size']) == ('gloo', 1)
    assert dist['checkpoint_on_cpu'] == ['text_prompt.ctx']
    names = [b['name'] for b in data['benchmarks']]
    assert names == ['coop-C5-fp32', 'coop-C5-amp']
    assert all(b['status'] == 'ok' for b in data['benchmarks'])
    fp32 = data['benchmarks'][0]['report']
    assert fp32['max_logit_difference'] < 1e-4
    assert {(r['phase'], r['formulation']) for r in fp32['results']} == {
        ('train', 'mmpl'), ('eval', 'mmpl'), ('train', 'reference'),
        ('eval', 'reference')}
    text = (out / 'gpu_check.md').read_text()
    for heading in ('## CUDA tests', '## tools/dist_train.sh CONFIG 1',
                    '## Benchmark', '## Targets'):
        assert heading in text
    assert '| coop | 5 | fp32 | train | reference |' in text
    assert (out / 'gpu_check.log').stat().st_size > 0


def test_the_check_refuses_cuda_without_a_gpu(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip('a GPU is visible')
    tool = load_tool('projects/lab/tools/gpu_check.py')
    assert tool.main([str(tmp_path / 'out')]) == 2
    assert 'no CUDA GPU is visible' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_the_check_replaces_no_file_of_the_user(tmp_path, capsys):
    """An OUT_DIR holding a gpu_check.md the check did not write: one line,
    before any work, and the file is kept."""
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'gpu_check.md').write_text('mine')
    tool = load_tool('projects/lab/tools/gpu_check.py')
    assert tool.main([str(out), '--device', 'cpu', '--quick', '--steps',
                      'tests']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('mmpl: error: '), err
    assert 'gpu_check.md' in err[0]
    assert (out / 'gpu_check.md').read_text() == 'mine'
    assert sorted(os.listdir(out)) == ['gpu_check.md']
