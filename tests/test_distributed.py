"""Multi-process runs on CPU (gloo) through the real launch script.

``tools/dist_train.sh`` trains CoOp for one epoch in 2 processes on the
embedded benchmark (shipped tiny CLIP, generated shapes; 45 test images per
split: odd, so the distributed sampler pads one) and evaluates in the same 2
processes; ``tools/test.py`` evaluates the saved checkpoint in 1 process.
Every sample must count exactly once, the metrics must match, and the run
must exit 0 with a clean gloo teardown. One launch costs about 15-25 s on 2
cores (mostly imports), so the file makes only one.
"""
import json
import multiprocessing
import os
import os.path as osp
import socket
import subprocess
import sys
import types

import pytest
import torch

from helpers import load_tool

#: run first; one pytest-xdist worker runs the whole module (its module
#: fixtures are costly: conftest.SHARED_FIXTURE_MODULES)
pytestmark = pytest.mark.heavy

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TESTS = osp.join(ROOT, 'tests')
COOP = osp.join(ROOT, 'configs/coop/coop_vitb16_b2n_eurosat.py')
FSDP_EXAMPLE = osp.join(ROOT,
                        'configs/examples/coop_vitl14_b2n_imagenet_fsdp.py')
TEST_IMAGES = 3 * 15  # per split: 3 test images x 15 base (or new) classes
SPLITS = ('base', 'new')

train_tool = load_tool('tools/train.py')
test_tool = load_tool('tools/test.py')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def launch(script: str, args: list, cwd: str) -> subprocess.CompletedProcess:
    """``bash tools/<script> ...`` with this interpreter, a free port, and
    this checkout (not an installed mmpl) plus the probes importable."""
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               PYTHONPATH=os.pathsep.join([ROOT, TESTS]))
    return subprocess.run(['bash', osp.join(ROOT, 'tools', script)] + args,
                          cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def assert_clean(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'terminate called' not in proc.stderr
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]


@pytest.fixture(scope='module')
def shapes_config(tmp_path_factory) -> str:
    """CoOp on the embedded benchmark, 4 shots, 1 epoch, batches of 4 (train)
    and 8 (test), with the probes; returns the config path."""
    from mmengine.config import Config

    from mmpl.utils import iter_dataset_cfgs, set_loader_options
    from mmpl_lab.shapes import to_embedded_benchmark, write_downstream_dataset
    work = tmp_path_factory.mktemp('dist')
    root = write_downstream_dataset(str(work / 'shapes'),
                                    images_per_class=(4, 1, 3))
    cfg = Config.fromfile(COOP)
    to_embedded_benchmark(cfg, root, max_epochs=1, batch_size=4)
    for node in iter_dataset_cfgs(cfg):
        if node.get('type') == 'FewShotDataset':
            node['num_shots'] = 4
    set_loader_options(cfg, max_batch_size=8)
    cfg.val_evaluator = [dict(type='Accuracy', topk=(1, )),
                         dict(type='SampleProbe')]
    cfg.test_evaluator = cfg.val_evaluator
    cfg.custom_hooks.append(dict(type='SaveCountProbe'))
    cfg.custom_imports = dict(imports=['mmpl', 'dist_probes'],
                              allow_failed_imports=False)
    cfg.default_hooks.logger.interval = 5
    path = str(work / 'coop_shapes.py')
    cfg.dump(path)
    return path


@pytest.fixture(scope='module')
def trained(shapes_config):
    """``dist_train.sh CONFIG 2``; returns (process, work_dir)."""
    cwd = osp.dirname(shapes_config)
    work_dir = osp.join(cwd, 'train')
    proc = launch('dist_train.sh',
                  [shapes_config, '2', '--work-dir', work_dir], cwd)
    return proc, work_dir


def test_dist_train_runs_and_tears_down_cleanly(trained):
    assert_clean(trained[0])


def test_dist_train_writes_checkpoint_and_results_once(trained):
    proc, work_dir = trained
    assert_clean(proc)
    assert sorted(f for f in os.listdir(work_dir) if f.endswith('.pth')) == \
        ['epoch_1.pth']
    saves = [json.load(open(osp.join(work_dir, f'saves_rank{r}.json')))
             for r in (0, 1)]
    assert saves == [dict(saves=1), dict(saves=0)]  # rank 0 only
    ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), weights_only=True)
    assert sorted(ckpt['state_dict']) == ['text_prompt.ctx']
    metrics = json.load(open(osp.join(work_dir, 'results.json')))['metrics']
    for split in SPLITS:  # the evaluation after training, in 2 processes
        assert metrics[f'{split}/probe/samples'] == TEST_IMAGES
        assert metrics[f'{split}/probe/distinct'] == TEST_IMAGES


def test_2_process_evaluation_counts_each_sample_once_and_equals_1_process(
        trained, shapes_config, tmp_path):
    """The evaluation after training ran in the 2 processes; tools/test.py
    in one process on the saved checkpoint (the same final model) must give
    the same metrics. (tools/dist_test.sh runs the same loop; a second
    2-process launch would double this file's time.)"""
    _, work_dir = trained
    out = tmp_path / 'one.json'
    code = test_tool.main([shapes_config, osp.join(work_dir, 'epoch_1.pth'),
                           '--work-dir', str(tmp_path), '--out', str(out)])
    assert code == 0
    single = json.loads(out.read_text())
    multi = json.load(open(osp.join(work_dir, 'results.json')))['metrics']
    assert set(multi) == set(single)
    for split in SPLITS:
        for metrics in (single, multi):
            assert metrics[f'{split}/probe/samples'] == TEST_IMAGES
            assert metrics[f'{split}/probe/distinct'] == TEST_IMAGES
    for key, value in single.items():
        assert multi[key] == pytest.approx(value, rel=0, abs=1e-6), key
    # a model that learned something: equality is not 0 == 0
    assert 0 < single['base/accuracy/top1'] < 100


def _nan_guard_process(rank: int, port: int, queue) -> None:
    """One of two gloo processes: only rank 1 sees a NaN loss."""
    import torch.distributed as dist

    from mmpl.engine import NaNGuardHook
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    runner = types.SimpleNamespace(
        iter=6, epoch=1, message_hub=types.SimpleNamespace(
            get_info=lambda key: 'work/epoch_1.pth'))
    loss = float('nan') if rank == 1 else 0.5
    try:
        NaNGuardHook().after_train_iter(
            runner, 0, outputs=dict(loss=torch.tensor(loss)))
        queue.put((rank, 'continued'))
    except RuntimeError as exc:
        queue.put((rank, str(exc)))
    finally:
        dist.destroy_process_group()


def test_nan_in_one_process_stops_every_process():
    """Averaged gradients carry one process's NaN into every model: rank 0
    (which writes checkpoints) must stop too, before saving."""
    ctx = multiprocessing.get_context('fork')
    queue, port = ctx.Queue(), free_port()
    procs = [ctx.Process(target=_nan_guard_process, args=(r, port, queue))
             for r in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcome = dict(queue.get(timeout=5) for _ in procs)
    assert 'non-finite loss at iteration 7 (epoch 2): {' in outcome[1]
    assert 'non-finite loss at iteration 7 (epoch 2): in another process' \
        in outcome[0]
    assert 'Last good checkpoint: work/epoch_1.pth' in outcome[0]


def test_cpu_wrapper_selection():
    from mmengine.config import Config

    from mmpl.apis.launch import _use_cpu_wrapper
    cfg = Config(dict(find_unused_parameters=True))
    _use_cpu_wrapper(cfg)
    assert cfg.model_wrapper_cfg == dict(
        type='CPUDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=True)
    cfg = Config(dict(runner_type='FlexibleRunner'))
    _use_cpu_wrapper(cfg)
    assert cfg.strategy == dict(type='DDPStrategy', model_wrapper=dict(
        type='CPUDistributedDataParallel', broadcast_buffers=False))
    custom = dict(type='MyWrapper')  # a user's own wrapper stays
    cfg = Config(dict(model_wrapper_cfg=custom))
    _use_cpu_wrapper(cfg)
    assert cfg.model_wrapper_cfg == custom


def test_fsdp_example_builds_and_stops_with_one_line_without_gpu(
        tmp_path, capsys, monkeypatch):
    from mmengine.config import Config
    from mmengine.registry import RUNNERS
    cfg = Config.fromfile(FSDP_EXAMPLE)
    assert cfg.runner_type == 'FlexibleRunner'
    assert cfg.strategy.type == 'FSDPStrategy'
    assert cfg.model.clip.arch == 'ViT-L-14'
    # mmengine accepts it: FlexibleRunner and its FSDPStrategy build (the
    # model is built and wrapped later, in train(), on the GPUs)
    cfg.work_dir = str(tmp_path / 'w')
    cfg.launcher = 'none'
    runner = RUNNERS.build(cfg)
    assert type(runner).__name__ == 'FlexibleRunner'
    assert type(runner.strategy).__name__ == 'FSDPStrategy'
    del runner
    # tools/train.py without a GPU: one line, no traceback
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    code = train_tool.main([FSDP_EXAMPLE, '--work-dir', str(tmp_path / 'w')])
    assert code == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    lines = [x for x in err.splitlines() if x.startswith('mmpl: error: ')]
    assert len(lines) == 1 and 'FSDPStrategy' in lines[0] and \
        'needs CUDA GPUs' in lines[0], err


@pytest.mark.parametrize('launcher', ['slurm', 'pytorch'])
def test_cpu_launch_without_torchrun_is_one_line(launcher, monkeypatch):
    """On CPU: Slurm/MPI launchers, or --launcher pytorch without torchrun's
    environment, say to use torchrun."""
    from mmengine.config import Config

    from mmpl.apis import prepare_launch
    from mmpl.utils.errors import LaunchError, user_error_message
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(LaunchError) as info:
        prepare_launch(Config(dict(launcher=launcher)))
    message = user_error_message(info.value)
    assert 'torchrun' in message and 'tools/dist_train.sh' in message


@pytest.mark.parametrize('script', [
    'dist_train.sh', 'dist_test.sh', 'dist_run.sh', 'slurm_train.sh',
    'slurm_test.sh', 'slurm_run.sh'])
def test_launch_scripts_parse(script):
    path = osp.join(ROOT, 'tools', script)
    assert os.access(path, os.X_OK)
    subprocess.run(['bash', '-n', path], check=True)


@pytest.mark.parametrize('args, tool_args', [
    (['cfg.py', '2', '--seed', '3'], ['train', 'cfg.py', '--seed', '3']),
    (['cfg.py', 'ckpt.pth', '2', '--out', 'm.json'],
     ['test', 'cfg.py', 'ckpt.pth', '--out', 'm.json']),
    (['cfg.py', '2', '--out', 'm.json'],  # no checkpoint (ZeroShotCLIP)
     ['test', 'cfg.py', '--out', 'm.json']),
    (['cfg.py', '2'], ['test', 'cfg.py']),
])
def test_dist_scripts_pass_arguments_to_torchrun(args, tool_args):
    script = 'dist_train.sh' if tool_args[0] == 'train' else 'dist_test.sh'
    env = dict(os.environ, PYTHON='echo', PORT='29999')
    check, launch = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', script)] + args, env=env,
        check=True, capture_output=True, text=True).stdout.splitlines()
    tool = osp.join(ROOT, 'tools', tool_args[0] + '.py')
    # the arguments are checked once, in one process, before torchrun
    assert check.split() == [tool] + tool_args[1:] + ['--check-only']
    out = launch.split()
    assert out[:2] == ['-m', 'torch.distributed.run']
    assert '--nproc_per_node=2' in out and '--master_port=29999' in out
    assert out[out.index(tool) + 1:] == ['--launcher', 'pytorch'
                                         ] + tool_args[1:]


@pytest.mark.parametrize('script, args', [
    ('dist_train.sh', ['{bad}', '2']),
    ('dist_test.sh', [
        osp.join(ROOT, 'configs/coop/coop_vitb16_b2n_eurosat.py'),
        '{missing}', '2'])])
def test_dist_scripts_check_once_before_starting_processes(script, args,
                                                          tmp_path):
    """A bad config or checkpoint is one line, exit 2, before torchrun
    starts N processes that would each print a traceback."""
    bad = tmp_path / 'bad.py'
    bad.write_text('model = dict(type=undefined_name)\n')
    args = [a.format(bad=bad, missing=tmp_path / 'none.pth') for a in args]
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools', script)] + args,
                          capture_output=True, text=True,
                          env=dict(os.environ, PORT='29998'))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith('mmpl: error: ')
    assert 'torch.distributed' not in proc.stderr


def test_slurm_scripts_pass_tasks_and_arguments_to_srun(tmp_path):
    """Slurm is not available here: a stand-in ``srun`` records its
    arguments."""
    fake = tmp_path / 'srun'
    fake.write_text('#!/usr/bin/env bash\necho "$@" > "$SRUN_LOG"\n')
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f'{tmp_path}{os.pathsep}{os.environ["PATH"]}',
               GPUS='16', GPUS_PER_NODE='8', SRUN_ARGS='--quotatype=spot',
               SRUN_LOG=str(tmp_path / 'args'))
    subprocess.run(['bash', osp.join(ROOT, 'tools/slurm_train.sh'), 'gpu',
                    'coop', 'cfg.py', 'work', '--seed', '3'], env=env,
                   check=True, capture_output=True)
    args = (tmp_path / 'args').read_text().split()
    assert args[:2] == ['-p', 'gpu']
    assert {'--job-name=coop', '--gres=gpu:8', '--ntasks=16',
            '--ntasks-per-node=8', '--kill-on-bad-exit=1',
            '--quotatype=spot'} <= set(args)
    tail = args[args.index('-u') + 1:]
    assert tail == [osp.join(ROOT, 'tools/train.py'), '--launcher=slurm',
                    'cfg.py', '--work-dir=work', '--seed', '3']
    subprocess.run(['bash', osp.join(ROOT, 'tools/slurm_test.sh'), 'gpu',
                    'coop', 'cfg.py', 'ckpt.pth'], env=env, check=True,
                   capture_output=True)
    args = (tmp_path / 'args').read_text().split()
    assert args[args.index('-u') + 1:] == [
        osp.join(ROOT, 'tools/test.py'), '--launcher=slurm', 'cfg.py',
        'ckpt.pth']


@pytest.mark.parametrize('script, args', [
    ('dist_train.sh', ['cfg.py', '0']), ('dist_train.sh', ['cfg.py', 'abc']),
    ('dist_test.sh', ['cfg.py', 'ckpt.pth', '-2']),
    ('slurm_train.sh', ['gpu', 'job', 'cfg.py', 'work'])])
def test_launch_scripts_refuse_a_bad_gpu_count(script, args):
    env = dict(os.environ, PYTHON='echo', GPUS='x')
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools', script)] + args,
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ''
    assert proc.stderr.startswith('mmpl: error: GPUS must be a whole number'
                                  ' >= 1, got ') and proc.stderr.count(
                                      '\n') == 1, proc.stderr


def test_launch_scripts_find_the_repository_venv():
    out = subprocess.run(
        ['bash', '-c', f'unset PYTHON; source {ROOT}/tools/launch_env.sh; '
         'echo "$PYTHON"'], capture_output=True, text=True).stdout.strip()
    venv = osp.join(ROOT, '.venv/bin/python')
    assert out == (venv if os.access(venv, os.X_OK) else 'python3')
