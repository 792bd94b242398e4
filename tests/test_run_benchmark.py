"""tools/run_benchmark.py: the plan (datasets x shots x seeds, shared
ImageNet training of xd and dg), the commands of each launcher, skipping
finished runs, and real offline runs (--smoke: tiny CLIP, miniature data)
whose report is checked against the results.json files by hand."""
import csv
import json
import math
import os
import os.path as osp
import shlex

import pytest

from helpers import ROOT, load_tool

bench = load_tool('tools/run_benchmark.py')
COOP_FS = osp.join(ROOT, 'configs/coop/coop_vitb16_fewshot16_eurosat.py')
COOP_XD = osp.join(ROOT, 'configs/coop/coop_vitb16_xd_imagenet.py')
COOP_DG = osp.join(ROOT, 'configs/coop/coop_vitb16_dg_imagenet.py')


def _commands(capsys, *argv):
    """The commands a dry run prints (comments dropped), each as
    (environment, argv)."""
    assert bench.main(list(argv) + ['--dry-run']) == 0
    out = capsys.readouterr().out
    commands = []
    for line in out.splitlines():
        if line and not line.startswith('#'):
            words = shlex.split(line)
            n = next(i for i, w in enumerate(words) if '=' not in w)
            commands.append((dict(w.split('=', 1) for w in words[:n]),
                             words[n:]))
    return commands, out


def _options(cmd):
    return dict(kv.split('=', 1)
                for kv in cmd[cmd.index('--cfg-options') + 1:]
                if '=' in kv)


def test_dry_run_fewshot_datasets_shots_seeds(capsys, tmp_path):
    cmds, _ = _commands(capsys, COOP_FS, '--datasets', 'eurosat', 'dtd',
                        '--shots', '1', '4', '--seeds', '1', '2',
                        '--work-dir', str(tmp_path), '--data-root', '/d',
                        '--cfg-options', 'model.clip.pretrained=/w/b16.pt')
    cmds = [argv for _, argv in cmds]
    train = [c for c in cmds if c[2].endswith('tools/train.py')]
    assert len(train) == 2 * 2 * 2 and cmds[-1][1].endswith('report.py')
    by_dir = {c[c.index('--work-dir') + 1]: c for c in train}
    dtd4 = by_dir[str(tmp_path / 'coop_vitb16_fewshot4_dtd' / 'seed2')]
    assert dtd4[3].endswith('configs/coop/coop_vitb16_fewshot16_dtd.py')
    assert dtd4[dtd4.index('--seed') + 1] == '2'
    options = _options(dtd4)
    # CoOp's epochs by shots (fewshot_epochs), data under --data-root
    assert options['train_dataloader.dataset.num_shots'] == '4'
    assert options['train_cfg.max_epochs'] == '100'
    assert options['train_dataloader.dataset.dataset.data_root'] == '/d/dtd'
    assert options['test_dataloader.dtd.dataset.data_root'] == '/d/dtd'
    assert options['model.clip.pretrained'] == '/w/b16.pt'
    one = _options(by_dir[str(tmp_path / 'coop_vitb16_fewshot1_eurosat' /
                              'seed1')])
    assert one['train_cfg.max_epochs'] == '50'


def test_dry_run_xd_dg_share_one_training(capsys, tmp_path):
    cmds, _ = _commands(capsys, COOP_XD, COOP_DG, '--seeds', '3',
                        '--work-dir', str(tmp_path), '--launcher', 'slurm',
                        '--partition', 'p1', '--gpus', '2',
                        '--srun-args=--quotatype=auto')
    env, train = cmds[0]
    assert env['GPUS'] == env['GPUS_PER_NODE'] == '2'
    assert env['SRUN_ARGS'] == '--quotatype=auto'
    scripts = [osp.basename(argv[1]) for _, argv in cmds[:3]]
    assert scripts == ['slurm_train.sh', 'slurm_test.sh', 'slurm_test.sh']
    train_dir = str(tmp_path / 'coop_vitb16_xd_imagenet' / 'seed3')
    # slurm_train.sh PARTITION JOB CONFIG WORK_DIR [train.py args]
    assert train[2] == 'p1' and train[4].endswith('coop_vitb16_xd_imagenet.py')
    assert train[5] == train_dir and '--work-dir' not in train
    assert train[train.index('--seed') + 1] == '3'
    ckpt = osp.join(train_dir, 'epoch_200.pth')  # CoOp, 16 shots
    (_, xd_test), (_, dg_test) = cmds[1], cmds[2]
    # slurm_test.sh PARTITION JOB CONFIG CHECKPOINT [test.py args]
    assert xd_test[4].endswith('coop_vitb16_xd_imagenet.py')
    assert xd_test[5] == ckpt
    assert dg_test[4].endswith('coop_vitb16_dg_imagenet.py')
    assert dg_test[5] == ckpt
    assert dg_test[dg_test.index('--work-dir') + 1] == str(
        tmp_path / 'coop_vitb16_dg_imagenet' / 'seed3')
    assert _options(dg_test)['randomness.seed'] == '3'


def test_dry_run_pytorch_skips_done_and_resumes(capsys, tmp_path):
    done = tmp_path / 'coop_vitb16_fewshot16_eurosat' / 'seed1'
    done.mkdir(parents=True)
    (done / 'results.json').write_text('{}')
    partial = tmp_path / 'coop_vitb16_fewshot16_eurosat' / 'seed2'
    partial.mkdir()
    (partial / 'last_checkpoint').write_text(str(partial / 'epoch_3.pth'))
    cmds, out = _commands(capsys, COOP_FS, '--seeds', '1', '2',
                          '--work-dir', str(tmp_path), '--launcher',
                          'pytorch', '--gpus', '4')
    assert 'seed 1' in out and 'skipped' in out
    assert len(cmds) == 2  # seed 2 and the report
    env, train = cmds[0]
    # dist_train.sh CONFIG GPUS [train.py args]
    assert train[0] == 'bash' and train[1].endswith('tools/dist_train.sh')
    assert train[3] == '4' and '--resume' in train and 'PYTHON' in env


@pytest.mark.parametrize('argv,message', [
    (['--datasets', 'mnist'], 'unknown dataset(s) mnist'),
    (['--shots', '4', '--datasets', 'dtd'], '--shots selects the shots'),
    (['--launcher', 'slurm', '--gpus', '0'], '--gpus must be >= 1'),
    (['--seeds', '-1'], '--seeds must be distinct integers >= 0'),
    (['--seeds', '1', '1'], '--seeds must be distinct integers >= 0'),
    # a cross-dataset config evaluates fixed targets: --datasets is refused,
    # not ignored while ImageNet runs are planned
    (['XD', '--datasets', 'eurosat'], '--datasets selects the datasets of '
     'base-to-new and few-shot configs'),
    (['--report-dir', __file__], 'is a file, not a folder'),
    # a bad config with a multi-process launcher: one line from the planner,
    # before any process is started
    (['BAD', '--launcher', 'pytorch', '--gpus', '8'], 'config not found'),
])
def test_user_errors_are_one_line(argv, message, capsys, tmp_path):
    config = osp.join(ROOT, 'configs/coop/coop_vitb16_b2n_eurosat.py')
    if argv[0] in ('XD', 'BAD'):
        config = osp.join(ROOT, 'configs/coop/coop_vitb16_xd_imagenet.py'
                          if argv[0] == 'XD' else 'configs/coop/none.py')
        argv = argv[1:]
    assert bench.main([config, '--work-dir', str(tmp_path), '--dry-run'] +
                      argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('mmpl: error:') and message in err
    assert '\n' not in err


def _hand_stats(values):
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean)**2 for v in values) / (len(values) - 1))
    return mean, std


def test_smoke_benchmark_two_datasets_two_seeds(tmp_path, capsys):
    """Four real runs (tiny CLIP, miniature DTD and Caltech101, 1 shot); the
    report's table equals the mean / std computed by hand from the four
    results.json files; a second call runs nothing."""
    work = str(tmp_path / 'bench')
    argv = [COOP_FS, '--datasets', 'dtd', 'caltech101', '--shots', '1',
            '--seeds', '1', '2', '--work-dir', work, '--smoke']
    assert bench.main(argv) == 0
    acc = {}
    for dataset in ('dtd', 'caltech101'):
        for seed in (1, 2):
            path = osp.join(work, f'coop_vitb16_fewshot1_{dataset}',
                            f'seed{seed}', 'results.json')
            with open(path) as f:
                record = json.load(f)
            assert (record['protocol'], record['num_shots'], record['seed'],
                    record['method']) == ('fewshot', 1, seed, 'CoOp')
            acc[dataset, seed] = record['metrics'][
                f'{dataset}/accuracy/top1']
    with open(osp.join(work, 'report', 'fewshot_table.csv')) as f:
        rows = {r['dataset']: r for r in csv.DictReader(f)}
    means = {}
    for dataset in ('dtd', 'caltech101'):
        mean, std = _hand_stats([acc[dataset, 1], acc[dataset, 2]])
        means[dataset] = mean
        assert float(rows[dataset]['shots1']) == pytest.approx(mean, abs=1e-4)
        assert float(rows[dataset]['shots1_std']) == pytest.approx(std,
                                                                   abs=1e-4)
        assert rows[dataset]['seeds'] == '1 2'
    assert float(rows['average']['shots1']) == pytest.approx(
        (means['dtd'] + means['caltech101']) / 2, abs=1e-4)
    md = open(osp.join(work, 'report', 'fewshot_table.md')).read()
    average = (means['dtd'] + means['caltech101']) / 2
    assert f'| CoOp | average | {average:.2f}' in md
    # finished runs are skipped, their files untouched
    stamp = os.stat(osp.join(work, 'coop_vitb16_fewshot1_dtd', 'seed1',
                             'results.json')).st_mtime_ns
    capsys.readouterr()
    assert bench.main(argv) == 0
    assert capsys.readouterr().out.count('skipped') == 4
    assert os.stat(osp.join(work, 'coop_vitb16_fewshot1_dtd', 'seed1',
                            'results.json')).st_mtime_ns == stamp


def test_smoke_xd_dg_one_training_two_tests(tmp_path):
    """xd + dg of one seed: one ImageNet training, tools/test.py on the 10
    targets and on the 4 variants (each with the source); the report has
    both tables, each averaging its targets only. (1 training shot per class,
    through --cfg-options.)"""
    work = str(tmp_path / 'bench')
    assert bench.main([COOP_XD, COOP_DG, '--seeds', '1', '--work-dir', work,
                       '--smoke', '--cfg-options',
                       'train_dataloader.dataset.num_shots=1']) == 0
    xd_dir = osp.join(work, 'coop_vitb16_xd_imagenet', 'seed1')
    dg_dir = osp.join(work, 'coop_vitb16_dg_imagenet', 'seed1')
    assert osp.isfile(osp.join(xd_dir, 'epoch_1.pth'))
    assert not any(f.endswith('.pth') for f in os.listdir(dg_dir))
    with open(osp.join(dg_dir, 'test_results.json')) as f:
        dg = json.load(f)
    assert (dg['protocol'], dg['num_shots']) == ('dg', 1)
    assert set(dg['metrics']) == {
        f'{d}/accuracy/top1' for d in ('imagenet', 'imagenetv2',
                                       'imagenet_sketch', 'imagenet_a',
                                       'imagenet_r')}
    with open(osp.join(xd_dir, 'test_results.json')) as f:
        xd = json.load(f)
    assert len(xd['metrics']) == 11
    with open(osp.join(work, 'report', 'dg_table.csv')) as f:
        rows = {r['dataset']: float(r['top1']) for r in csv.DictReader(f)}
    variants = [v for k, v in dg['metrics'].items()
                if not k.startswith('imagenet/')]
    assert rows['average'] == pytest.approx(sum(variants) / 4, abs=1e-4)
    with open(osp.join(work, 'report', 'xd_table.csv')) as f:
        rows = {r['dataset']: float(r['top1']) for r in csv.DictReader(f)}
    targets = [v for k, v in xd['metrics'].items()
               if not k.startswith('imagenet/')]
    assert rows['average'] == pytest.approx(sum(targets) / 10, abs=1e-4)
