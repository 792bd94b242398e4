"""The GPU check (issue 35): what a CUDA machine shows about mmpl, in one
run that writes a Markdown table and JSON.

    bash projects/lab/tools/gpu_check.sh OUT_DIR        # on a CUDA machine
    bash projects/lab/tools/gpu_check.sh OUT_DIR --device cpu --quick

Three steps, in this order, each written to the report as soon as it ends
(a run stopped at a time limit keeps what it measured):

1. ``tests``: the CUDA tests (``pytest -m cuda``: every family's training
   step in fp32 / bf16 / fp16, the fast path against the per-image
   reference, ``tools/train.py --amp`` end to end, checkpoints read on a
   CPU), summarised per test function from pytest's JUnit XML;
2. ``dist``: ``tools/dist_train.sh CONFIG 1`` on a tiny offline config
   (NCCL on a GPU, gloo on CPU): exit status, backend, world size, the
   checkpoint rank 0 wrote, read on a CPU, and a clean teardown;
3. ``benchmarks``: ``projects/lab/tools/benchmark.py`` on every family
   (ViT-B/16 random weights, B=4, C=50; C=1000 for the text-heavy
   families) in fp32 against ``--reference`` and under ``--amp``: images/s,
   max allocated memory, GFLOP/s and their fraction of the tool's matmul
   probe in the step's dtype and in bf16. A reference that runs out of
   memory is recorded as such and the run is measured without it; runs
   that would start past ``--budget-s`` are recorded as skipped.

``--device cpu --quick`` runs the same steps small (the tiny CLIP, the CPU
twins of the CUDA tests, gloo): the tests of the lab run it on CPU."""
import contextlib
import datetime
import gc
import json
import os
import os.path as osp
import platform
import runpy
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

from . import REPO_ROOT

MiB = 1 << 20


def families() -> Dict[str, str]:
    """One config of every method family, from mmpl's catalogue: family
    (``coop``, ``ctp_tft`` ...) -> its first base-to-new EuroSAT config."""
    from mmpl.apis import list_models
    configs: Dict[str, str] = {}
    for model in list_models('*_b2n_eurosat'):
        configs.setdefault(model.method.lower().replace('+', '_'),
                           model.config)
    return configs


#: family -> config (``configs/...``)
FAMILIES = families()
#: families whose text encoder dominates at many classes (C=1000 runs):
#: CoOp/KgCoOp/PromptSRC encode C prompts per step, CoCoOp/CTP/FTP B*C
#: (PromptSRC stands for IVLP, the same prompts plus its losses)
TEXT_HEAVY = ('coop', 'kgcoop', 'cocoop', 'promptsrc', 'ctp_tft', 'ftp_tvp')
#: the issue's target: text-encoder training at C=1000 under AMP reaches
#: this fraction of the bf16 matmul probe
PROBE_TARGET = 0.40
#: the families of the CPU run (``--quick``)
QUICK_FAMILIES = ('coop', 'cocoop')


@dataclass
class Settings:
    """What one check runs."""
    device: str = 'cuda'
    arch: str = 'ViT-B-16'
    batch_size: int = 4
    families: tuple = tuple(FAMILIES)
    text_heavy: tuple = TEXT_HEAVY
    classes: int = 50
    many_classes: Optional[int] = 1000
    steps: int = 3
    many_steps: int = 2  # the C=1000 runs (the reference's are long)
    warmup: int = 1
    probe_seconds: float = 0.1
    #: pytest's arguments after ``python -m pytest``
    pytest_args: List[str] = field(default_factory=lambda: [
        'tests', 'projects/lab/tests', '-m', 'cuda'])
    #: seconds after which no new benchmark run starts
    budget_s: float = 380.0
    pytest_timeout_s: float = 300.0
    dist_timeout_s: float = 180.0


def settings_for(device: str, quick: bool = False, **overrides) -> Settings:
    """The full check on ``device``, or its small twin (``quick``: the
    tiny CLIP, two families, a handful of classes, the CPU twins of the
    CUDA tests)."""
    settings = Settings(device=device)
    if quick:
        from mmpl.testing import TINY_ARCH
        settings = Settings(
            device=device, arch=TINY_ARCH, batch_size=2,
            families=QUICK_FAMILIES, text_heavy=('cocoop', ), classes=5,
            many_classes=9, steps=1, many_steps=1, warmup=0,
            probe_seconds=0.02, pytest_args=[
                'tests/test_cuda.py', 'projects/lab/tests/'
                'test_cuda_fast_path.py', '-k', f'{device}-coop-fp32 or '
                f'test_fast_path_equals_per_image_reference and {device}-coop'
                ' and not kgcoop'])
    for key, value in overrides.items():
        if value is not None:
            setattr(settings, key, value)
    return settings


@dataclass
class BenchRun:
    """One call of the benchmark tool."""
    family: str
    num_classes: int
    amp: bool
    reference: bool
    steps: int

    @property
    def name(self) -> str:
        precision = 'amp' if self.amp else 'fp32'
        return f'{self.family}-C{self.num_classes}-{precision}'

    def argv(self, settings: Settings, out: str,
             reference: Optional[bool] = None) -> List[str]:
        reference = self.reference if reference is None else reference
        return ([osp.join(REPO_ROOT, FAMILIES[self.family]),
                 '--arch', settings.arch, '--device', settings.device,
                 '--batch-size', str(settings.batch_size),
                 '--num-classes', str(self.num_classes),
                 '--steps', str(self.steps), '--warmup',
                 str(settings.warmup), '--probe-seconds',
                 str(settings.probe_seconds), '--in-process', '--out', out]
                + (['--amp'] if self.amp else [])
                + (['--reference'] if reference else []))


def plan_benchmarks(settings: Settings) -> List[BenchRun]:
    """The benchmark runs, most telling first (the time budget cuts the
    tail): AMP at many classes on the text-heavy families (the probe
    target), then every family in fp32 against the reference at C
    classes, then the text-heavy ones in fp32 against the reference at
    many classes, then every family under AMP at C classes."""
    many = settings.many_classes
    heavy = [f for f in settings.families if f in settings.text_heavy]
    runs = []
    if many:
        runs += [BenchRun(f, many, True, False, settings.many_steps)
                 for f in heavy]
    runs += [BenchRun(f, settings.classes, False, True, settings.steps)
             for f in settings.families]
    if many:
        runs += [BenchRun(f, many, False, True, settings.many_steps)
                 for f in heavy]
    runs += [BenchRun(f, settings.classes, True, False, settings.steps)
             for f in settings.families]
    return runs


# ---------------------------------------------------------------- the report
class Report:
    """The check's results, written to ``<out>/gpu_check.json`` and
    ``<out>/gpu_check.md`` after every step."""

    def __init__(self, out_dir: str, settings: Settings, command: str):
        self.out_dir = out_dir
        self.data = dict(command=command, settings=asdict(settings),
                         environment=environment(settings.device),
                         tests=None, dist=None, benchmarks=[])

    @property
    def json_path(self) -> str:
        return osp.join(self.out_dir, 'gpu_check.json')

    @property
    def markdown_path(self) -> str:
        return osp.join(self.out_dir, 'gpu_check.md')

    def failures(self) -> List[str]:
        """What did not work: failed tests, a failed distributed run, a
        failed benchmark run (a reference out of memory is a finding,
        not a failure)."""
        out = []
        tests, dist = self.data['tests'], self.data['dist']
        if tests is not None and tests['status'] != 0:
            out.append(f"tests: exit status {tests['status']}")
        if dist is not None and not dist.get('clean_teardown'):
            out.append(f"dist: exit status {dist['status']}")
        out += [f"benchmark {b['name']}: {b.get('error')}"
                for b in self.data['benchmarks'] if b['status'] == 'failed']
        return out

    def save(self) -> None:
        for path, text in ((self.json_path, json.dumps(self.data, indent=2)),
                           (self.markdown_path, markdown(self.data))):
            with open(path + '.tmp', 'w') as f:
                f.write(text + '\n')
            os.replace(path + '.tmp', path)


def _version(dist: str) -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def environment(device: str) -> dict:
    """What ran the check: date, host, Python, torch, CUDA, the GPU and the
    OpenMMLab / open_clip versions."""
    import torch
    env = dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M UTC'),
        host=socket.gethostname(), machine=platform.machine(),
        python=platform.python_version(), torch=torch.__version__,
        cuda=torch.version.cuda, device=device, gpu=None, gpu_memory_gib=None,
        packages={name: _version(name) for name in (
            'mmengine', 'mmcv-lite', 'mmcv', 'mmpretrain', 'open_clip_torch',
            'timm', 'torchvision', 'numpy')})
    if device == 'cuda' and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env.update(gpu=props.name,
                   gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   bf16_supported=torch.cuda.is_bf16_supported())
    return env


# ----------------------------------------------------------------- the tests
def parse_junit(path: str) -> List[dict]:
    """pytest's JUnit XML -> one dict per test case: ``id``, ``outcome``
    (passed / failed / error / skipped), ``seconds``, ``message``."""
    cases = []
    for case in ET.parse(path).getroot().iter('testcase'):
        outcome, message = 'passed', ''
        for kind in ('failure', 'error', 'skipped'):
            node = case.find(kind)
            if node is not None:
                outcome = 'failed' if kind == 'failure' else kind
                message = (node.get('message') or '').strip()
                break
        module = case.get('classname', '')
        cases.append(dict(id=f"{module}::{case.get('name')}",
                          outcome=outcome,
                          seconds=float(case.get('time') or 0),
                          message=message.splitlines()[0][:300]
                          if message else ''))
    return cases


def test_summary(cases: List[dict]) -> Dict[str, Dict[str, int]]:
    """Counts per outcome for every test function (parameters merged)."""
    summary: Dict[str, Dict[str, int]] = {}
    for case in cases:
        function = case['id'].split('[', 1)[0]
        counts = summary.setdefault(function, {})
        counts[case['outcome']] = counts.get(case['outcome'], 0) + 1
    return summary


def run_tests(settings: Settings, work_dir: str, log) -> dict:
    """pytest with ``settings.pytest_args``; its outcome per test."""
    junit = osp.join(work_dir, 'junit.xml')
    cmd = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
           f'--junitxml={junit}'] + settings.pytest_args
    start = time.time()
    status = _call(cmd, log, settings.pytest_timeout_s)
    result = dict(command=' '.join(['python'] + cmd[1:]), status=status,
                  seconds=round(time.time() - start, 1), cases=[])
    if osp.isfile(junit):
        result['cases'] = parse_junit(junit)
    result['counts'] = {
        outcome: sum(c['outcome'] == outcome for c in result['cases'])
        for outcome in ('passed', 'failed', 'error', 'skipped')}
    return result


# ------------------------------------------------------------------ the dist
def write_tiny_config(work_dir: str) -> str:
    """CoOp on the tiny CLIP and miniature data, one epoch, with the
    :mod:`mmpl_lab.dist_probe` hook; returns the config file."""
    from mmengine.config import Config

    from mmpl.apis import load_config
    from mmpl.testing import make_offline
    cfg = load_config(osp.join(REPO_ROOT, FAMILIES['coop']),
                      work_dir=osp.join(work_dir, 'run'), quiet=True)
    make_offline(cfg, osp.join(work_dir, 'data'))
    imports = dict(cfg.get('custom_imports') or dict(imports=[]))
    imports['imports'] = list(imports.get('imports', [])) + [
        'mmpl_lab.dist_probe']
    cfg.custom_imports = imports
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
        dict(type='DistSetupProbe')]
    path = osp.join(work_dir, 'coop_tiny_offline.py')
    Config(cfg.to_dict()).dump(path)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_dist(settings: Settings, work_dir: str, log) -> dict:
    """``tools/dist_train.sh CONFIG 1`` on the tiny config; what it set up
    and left behind."""
    import torch
    os.makedirs(work_dir, exist_ok=True)
    config = write_tiny_config(work_dir)
    run_dir = osp.join(work_dir, 'train')
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()),
               PYTHONPATH=os.pathsep.join(
                   [REPO_ROOT, osp.join(REPO_ROOT, 'projects', 'lab')]
                   + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    if settings.device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = '-1'  # gloo, as on a CPU machine
    cmd = ['bash', osp.join(REPO_ROOT, 'tools', 'dist_train.sh'), config, '1',
           '--work-dir', run_dir]
    start = time.time()
    output: List[str] = []
    status = _call(cmd, log, settings.dist_timeout_s, env=env, keep=output)
    text = ''.join(output)
    result = dict(command=f'bash tools/dist_train.sh {osp.basename(config)}'
                  ' 1', status=status, seconds=round(time.time() - start, 1),
                  clean_teardown=status == 0 and 'terminate called' not in
                  text and 'Traceback' not in text)
    probe = osp.join(run_dir, 'dist_probe_rank0.json')
    if osp.isfile(probe):
        with open(probe) as f:
            result.update(json.load(f))
    ckpt = osp.join(run_dir, 'epoch_1.pth')
    result['checkpoint'] = osp.basename(ckpt) if osp.isfile(ckpt) else None
    if result['checkpoint']:
        try:
            state = torch.load(ckpt, map_location='cpu', weights_only=True)
            result['checkpoint_on_cpu'] = sorted(state['state_dict'])
        except Exception as exc:  # reported, not raised
            result['checkpoint_on_cpu'] = f'{type(exc).__name__}: {exc}'
    return result


def _call(cmd: List[str], log, timeout: float, env=None,
          keep: Optional[list] = None) -> object:
    """Run ``cmd`` with its output in ``log`` (and in ``keep``); its exit
    status, or ``'timed out'``."""
    log.write(f'\n$ {" ".join(cmd)}\n')
    log.flush()
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=timeout)
        status = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        status = 'timed out'
    log.write(out)
    log.flush()
    if keep is not None:
        keep.append(out)
    return status


# ----------------------------------------------------------- the benchmarks
def _out_of_memory(error: str) -> bool:
    return 'out of memory' in error.lower() or 'OutOfMemoryError' in error


def run_benchmark(run: BenchRun, settings: Settings, work_dir: str,
                  log, tool=None) -> dict:
    """One call of the benchmark tool (in this process); its report, or
    what stopped it. A reference that runs out of memory: the run again
    without it."""
    import torch
    tool = tool or load_benchmark_tool()
    result = dict(run=asdict(run), name=run.name, status='ok')
    out = osp.join(work_dir, f'{run.name}.json')
    start = time.time()
    for reference in ([True, False] if run.reference else [False]):
        if osp.exists(out):
            os.remove(out)
        try:
            with contextlib.redirect_stdout(log), \
                    contextlib.redirect_stderr(log):
                code = tool.main(run.argv(settings, out, reference))
        except Exception as exc:  # noqa: BLE001 (reported in the table)
            code, error = None, f'{type(exc).__name__}: {exc}'
        else:
            error = None if code == 0 else f'exit status {code}'
        gc.collect()  # what a failed run left (its model, its graph)
        if settings.device == 'cuda':
            torch.cuda.empty_cache()
        if error is None:
            with open(out) as f:
                result['report'] = json.load(f)
            break
        if reference and _out_of_memory(error):
            result['reference'] = 'out of memory'
            continue
        result.update(status='failed', error=error.splitlines()[0][:300])
        break
    result['seconds'] = round(time.time() - start, 1)
    return result


def load_benchmark_tool():
    """``projects/lab/tools/benchmark.py`` as a module (its ``main``)."""
    from types import SimpleNamespace
    path = osp.join(REPO_ROOT, 'projects', 'lab', 'tools', 'benchmark.py')
    return SimpleNamespace(**runpy.run_path(path, run_name='gpu_check_bm'))


def benchmark_rows(result: dict) -> List[dict]:
    """A benchmark result as table rows, one per phase and formulation."""
    run = result['run']
    base = dict(family=run['family'], classes=run['num_classes'],
                precision='AMP' if run['amp'] else 'fp32')
    report = result.get('report')
    if report is None:
        status = result['status']
        return [dict(base, phase='-', formulation='-',
                     note=result.get('error', status))]
    rows = []
    for r in report['results']:
        ratio = report['ratios'].get(r['phase'], {}) \
            if r['formulation'] == 'mmpl' else {}
        probes = r.get('probe_gflops', {})
        bf16 = probes.get('bfloat16')
        rows.append(dict(
            base, phase=r['phase'], formulation=r['formulation'],
            compute_dtype=r.get('compute_dtype'),
            images_per_s=r['images_per_s'],
            peak_mib=r['peak_bytes'] / MiB,
            working_mib=r['working_bytes'] / MiB,
            gflops=r.get('achieved_gflops'),
            probe_fraction=r.get('probe_fraction'),
            bf16_probe_fraction=(r['achieved_gflops'] / bf16
                                 if bf16 else None),
            speedup=ratio.get('speedup'),
            max_logit_difference=report.get('max_logit_difference')
            if r['formulation'] == 'mmpl' else None,
            note=result.get('reference', '') and
            f"reference: {result['reference']}"))
    return rows


def probe_targets(benchmarks: List[dict], many: Optional[int]) -> List[dict]:
    """Per text-heavy family: AMP training at many classes against
    :data:`PROBE_TARGET` of the bf16 probe."""
    out = []
    for result in benchmarks:
        run = result['run']
        if not (run['amp'] and run['num_classes'] == many):
            continue
        fraction = None
        for row in benchmark_rows(result):
            if row['phase'] == 'train' and row['formulation'] == 'mmpl':
                fraction = row.get('bf16_probe_fraction')
        out.append(dict(family=run['family'], fraction=fraction,
                        met=None if fraction is None else
                        fraction >= PROBE_TARGET))
    return out


# ------------------------------------------------------------- the markdown
def _fmt(value, spec: str) -> str:
    return '' if value is None else format(value, spec)


def markdown(data: dict) -> str:
    """The report as Markdown: environment, tests, dist, benchmarks and
    the issue's targets."""
    env, settings = data['environment'], data['settings']
    gpu = (f"{env['gpu']} ({env['gpu_memory_gib']} GiB)" if env.get('gpu')
           else env['device'])
    pkgs = ', '.join(f'{k} {v}' for k, v in env['packages'].items() if v)
    lines = ['# mmpl GPU check', '',
             f"{gpu}; torch {env['torch']} (CUDA {env['cuda']}), Python "
             f"{env['python']}; {pkgs}; {env['date']}.", '',
             f"Command: `{data['command']}`", '']
    lines += ['## CUDA tests', '']
    tests = data.get('tests')
    if tests is None:
        lines += ['not run', '']
    else:
        counts = tests['counts']
        lines += [f"`{tests['command']}`: exit status {tests['status']}, "
                  + ', '.join(f'{n} {k}' for k, n in counts.items() if n)
                  + f" in {tests['seconds']} s", '',
                  '| test | passed | failed | error | skipped |',
                  '|---|---:|---:|---:|---:|']
        for function, c in test_summary(tests['cases']).items():
            lines.append(f"| `{function}` | {c.get('passed', 0)} | "
                         f"{c.get('failed', 0)} | {c.get('error', 0)} | "
                         f"{c.get('skipped', 0)} |")
        failures = [c for c in tests['cases']
                    if c['outcome'] in ('failed', 'error')]
        if failures:
            lines += ['', 'Failures:', '']
            lines += [f"- `{c['id']}`: {c['message']}" for c in failures]
        lines.append('')
    lines += ['## tools/dist_train.sh CONFIG 1', '']
    dist = data.get('dist')
    if dist is None:
        lines += ['not run', '']
    else:
        lines += ['| check | result |', '|---|---|']
        for key in ('command', 'status', 'backend', 'world_size', 'device',
                    'wrapper', 'checkpoint', 'checkpoint_on_cpu',
                    'clean_teardown', 'seconds'):
            value = dist.get(key)
            if isinstance(value, list):
                value = ', '.join(value) or '(empty)'
            lines.append(f'| {key} | {value} |')
        lines.append('')
    lines += ['## Benchmark', '',
              f"`projects/lab/tools/benchmark.py`, {settings['arch']} random "
              f"weights, B={settings['batch_size']}, device "
              f"{settings['device']}; AMP is the tool's `--amp` (fp16 on "
              'CUDA, bf16 on CPU); memory: CUDA max allocated (CPU: the '
              'peak so far of one process); "of probe": GFLOP/s over the '
              "tool's matmul probe in the step's dtype, \"of bf16\": over "
              'its bf16 probe.', '',
              '| family | C | precision | phase | formulation | images/s | '
              'peak MiB | work MiB | GFLOP/s | of probe | of bf16 | '
              'speed-up | max abs logit diff | note |',
              '|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|'
              '---:|---|']
    for result in data['benchmarks']:
        for r in benchmark_rows(result):
            lines.append(
                f"| {r['family']} | {r['classes']} | {r['precision']} | "
                f"{r['phase']} | {r['formulation']} | "
                f"{_fmt(r.get('images_per_s'), '.1f')} | "
                f"{_fmt(r.get('peak_mib'), '.0f')} | "
                f"{_fmt(r.get('working_mib'), '.0f')} | "
                f"{_fmt(r.get('gflops'), '.0f')} | "
                f"{_fmt(r.get('probe_fraction'), '.0%')} | "
                f"{_fmt(r.get('bf16_probe_fraction'), '.0%')} | "
                f"{_fmt(r.get('speedup'), '.1f')} | "
                f"{_fmt(r.get('max_logit_difference'), '.1e')} | "
                f"{r.get('note') or ''} |")
    lines += ['', '## Targets', '']
    many = settings.get('many_classes')
    targets = probe_targets(data['benchmarks'], many)
    lines += [f'Text-encoder training at C={many} under AMP >= '
              f'{PROBE_TARGET:.0%} of the bf16 probe:', '']
    if not targets:
        lines.append('- not measured')
    for t in targets:
        verdict = {True: 'met', False: 'not met', None: 'not measured'}[
            t['met']]
        lines.append(f"- {t['family']}: {_fmt(t['fraction'], '.0%')} "
                     f'({verdict})')
    lines += ['', 'AMP trains in bf16 and fp16 (the CUDA tests of '
              '`test_training_step` and `tools/train.py --amp / --amp-dtype'
              ' bfloat16`): ' + amp_verdict(tests), '',
              'Memory per family: the benchmark table (peak MiB, train '
              'phase).', '']
    return '\n'.join(lines)


def amp_verdict(tests: Optional[dict]) -> str:
    """Whether the AMP cases of the tests passed, from their ids."""
    if not tests:
        return 'not run'
    amp = [c for c in tests['cases'] if any(
        key in c['id'] for key in ('-bf16]', '-fp16]', '-float16]',
                                   '-bfloat16]'))]
    ran = [c for c in amp if c['outcome'] != 'skipped']
    if not ran:
        return 'not run (skipped)'
    bad = [c for c in ran if c['outcome'] != 'passed']
    return (f'{len(ran) - len(bad)} of {len(ran)} AMP cases passed'
            + (f" (failed: {', '.join(c['id'] for c in bad)})" if bad
               else ''))


# ------------------------------------------------------------------ the run
#: what the check writes into its OUT_DIR
OUTPUTS = ('gpu_check.json', 'gpu_check.md', 'gpu_check.log')


def run_check(out_dir: str, settings: Settings, command: str,
              steps=('tests', 'dist', 'benchmarks'),
              work_dir: Optional[str] = None) -> Report:
    """Run ``steps`` and write the report after each; returns it. A file
    of these names in ``out_dir`` that the check did not write is refused
    before any work (nothing a user wrote is replaced)."""
    import tempfile

    from mmpl.utils.io import check_outputs, mark_outputs
    start = time.time()
    check_outputs(out_dir, OUTPUTS, 'OUT_DIR')
    os.makedirs(out_dir, exist_ok=True)
    mark_outputs(out_dir, OUTPUTS)
    work_dir = work_dir or tempfile.mkdtemp(prefix='mmpl-gpu-check-')
    report = Report(out_dir, settings, command)
    report.save()
    log_path = osp.join(out_dir, 'gpu_check.log')
    with open(log_path, 'a') as log:
        if 'tests' in steps:
            _say(f'CUDA tests: {" ".join(settings.pytest_args)}')
            report.data['tests'] = run_tests(settings, work_dir, log)
            report.save()
            _say(f"  {report.data['tests']['counts']}")
        if 'dist' in steps:
            _say('tools/dist_train.sh CONFIG 1')
            report.data['dist'] = run_dist(settings,
                                           osp.join(work_dir, 'dist'), log)
            report.save()
            _say(f"  status {report.data['dist']['status']}, backend "
                 f"{report.data['dist'].get('backend')}")
        if 'benchmarks' in steps:
            tool = load_benchmark_tool()
            bench_dir = osp.join(work_dir, 'bench')
            os.makedirs(bench_dir, exist_ok=True)
            for run in plan_benchmarks(settings):
                if time.time() - start > settings.budget_s:
                    report.data['benchmarks'].append(dict(
                        run=asdict(run), name=run.name,
                        status=f'skipped: past the {settings.budget_s:.0f} '
                        's budget'))
                    continue
                _say(f'benchmark {run.name}')
                result = run_benchmark(run, settings, bench_dir, log, tool)
                report.data['benchmarks'].append(result)
                report.save()
                _say(f"  {result['status']} in {result['seconds']} s"
                     + (f" ({result['error']})" if 'error' in result
                        else ''))
    report.data['seconds'] = round(time.time() - start, 1)
    report.save()
    return report


def _say(text: str) -> None:
    print(f'[gpu_check] {text}', flush=True)
