"""The tools an mmpretrain user reaches for (issue 36): tools/train.py
--auto-scale-lr and --no-persistent-workers, tools/test.py --out-item,
--show-dir, the confusion matrix per split, zero-shot tools/infer.py, the
attention maps of tools/visualization/vis_prompt_attention.py, and the
README's Tools section run verbatim.

Most tests run on a miniature of what ``make demo`` leaves in
``work_dirs/demo`` (its generated data, CTP+TFT's dumped config and
``epoch_30.pth``; one image per class and split, one epoch), built once
in a temporary folder that the tests use as their working directory."""
import csv
import glob
import json
import os
import os.path as osp
import re
import runpy
import shlex
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from mmpl_lab.shapes import class_names, render_pair
from helpers import ROOT, load_tool, offline_config
from two_objects import ARCH, LEFT, PRETRAINED

#: run first; one pytest-xdist worker runs the whole module (its module
#: fixture trains: conftest.SHARED_FIXTURE_MODULES)
pytestmark = pytest.mark.heavy

NAMES = class_names()
BASE, NEW = NAMES[:15], NAMES[15:]
RUN = 'work_dirs/demo/runs/CTP_TFT'
CONFIG = f'{RUN}/ctp_tft_vitb16_b2n_eurosat.py'
CKPT = f'{RUN}/epoch_30.pth'
COOP = osp.join(ROOT, 'configs/coop/coop_vitb16_b2n_eurosat.py')
README = open(osp.join(ROOT, 'README.md'), encoding='utf-8').read()

train_tool = load_tool('tools/train.py')
test_tool = load_tool('tools/test.py')
infer_tool = load_tool('tools/infer.py')
confusion_tool = load_tool('tools/analysis_tools/confusion_matrix.py')
vis_tool = load_tool('tools/visualization/vis_prompt_attention.py')


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """A folder holding ``work_dirs/demo`` as ``make demo`` leaves it
    (relative paths in the dumped config, as the demo writes them), at a
    miniature size, and ``configs`` and ``projects`` (links): the README's
    commands run there as in a checkout. The CTP+TFT run logs every
    iteration."""
    from mmpl.apis.launch import FileLogRunner
    from mmpl_lab.shapes import (METHODS, embedded_config,
                                 write_downstream_dataset)
    root = str(tmp_path_factory.mktemp('demo_root'))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        data = write_downstream_dataset('work_dirs/demo/data/shapes',
                                        images_per_class=(1, 1, 1))
        cfg = embedded_config('CTP+TFT', osp.join(ROOT, METHODS['CTP+TFT']),
                              data, RUN, schedule=dict(
                                  max_epochs=1, batch_size=16, lr=0.01))
        cfg.default_hooks.logger.interval = 1
        FileLogRunner.from_cfg(cfg).train()
        os.replace(f'{RUN}/epoch_1.pth', CKPT)  # the demo's last epoch
        for name in ('configs', 'projects'):  # as in a checkout
            os.symlink(osp.join(ROOT, name), name)
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture
def in_demo(demo, monkeypatch):
    monkeypatch.chdir(demo)
    return demo


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [x for x in err if x.startswith('mmpl: error: ')]
    assert len(lines) == 1, err
    assert '. ' in lines[0][len('mmpl: error: '):], lines[0]
    return lines[0]


# --------------------------------------------------------- train.py flags
def _captured_cfg(monkeypatch, tool, argv):
    """The config ``tool`` hands to the runner (run_stage replaced)."""
    import mmpl.apis.run as run
    seen = {}
    monkeypatch.setattr(run, 'run_stage',
                        lambda cfg, stage, before=None: seen.update(cfg=cfg))
    monkeypatch.setattr(run.preflight, 'check_data_roots', lambda cfg: None)
    assert tool.main(argv) == 0
    return seen['cfg']


def test_train_auto_scale_lr_enables_the_configs_base_batch(monkeypatch,
                                                            tmp_path):
    cfg = _captured_cfg(monkeypatch, train_tool, [
        COOP, '--auto-scale-lr', '--work-dir', str(tmp_path)])
    assert cfg.auto_scale_lr == dict(base_batch_size=32, enable=True)
    cfg = _captured_cfg(monkeypatch, train_tool, [COOP, '--work-dir',
                                                  str(tmp_path)])
    assert not cfg.auto_scale_lr.get('enable')


def test_auto_scale_lr_scales_the_lr_the_schedule_starts_from(tmp_path):
    """mmengine's scaling on mmpl's runner: lr x (batch / base), and the
    warm-up-cosine schedule follows the scaled lr."""
    from mmpl.apis.launch import QuietRunner
    from mmpl.apis.run import enable_auto_scale_lr
    cfg = offline_config(COOP, tmp_path)
    cfg.train_dataloader.batch_size = 8
    enable_auto_scale_lr(cfg)
    runner = QuietRunner.from_cfg(cfg)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.scale_lr(runner.optim_wrapper, runner.auto_scale_lr)
    lr = cfg.optim_wrapper.optimizer.lr * 8 / 32
    assert runner.optim_wrapper.param_groups[0]['lr'] == pytest.approx(lr)
    scheduler = runner.build_param_scheduler(runner.param_schedulers)[0]
    assert scheduler.base_values == [pytest.approx(lr)]


def test_auto_scale_lr_without_a_base_batch_is_one_line(monkeypatch,
                                                        tmp_path, capsys):
    config = tmp_path / 'no_base.py'
    config.write_text(f"_base_ = [{COOP!r}]\nauto_scale_lr = None\n")
    assert train_tool.main([str(config), '--auto-scale-lr',
                            '--check-only']) == 2
    assert 'no auto_scale_lr.base_batch_size' in _one_error_line(capsys)


#: each family's paper batch, and the batch its leaves train with: equal,
#: so that --auto-scale-lr changes nothing at the published batch
BASE_BATCH = {
    'coop/coop_vitb16_b2n_eurosat.py': 32,
    'coop/coop_vitb16_fewshot16_eurosat.py': 32,
    'coop/kgcoop_vitb16_b2n_eurosat.py': 128,
    'cocoop/cocoop_vitb16_b2n_eurosat.py': 1,
    'cocoop/cocoop_vitb16_xd_imagenet.py': 1,
    'maple/maple_vitb16_b2n_eurosat.py': 4,
    'ivlp/ivlp_vitb16_b2n_eurosat.py': 4,
    'promptsrc/promptsrc_vitb16_b2n_eurosat.py': 4,
    'dgprompt/dgprompt_vitb16_b2n_eurosat.py': 4,
    # TOMM and MPL train at CoCoOp's schedule (lr 2e-3, batch 1)
    'tomm/ctp_tft_vitb16_b2n_eurosat.py': 1,
    'tomm/ctp_tft_vitb16_dg_imagenet.py': 1,
    'mpl/ftp_tvp_vitb16_b2n_eurosat.py': 1,
    'mpl/ftp_vitb16_b2n_eurosat.py': 1,
}


@pytest.mark.parametrize('config', sorted(BASE_BATCH))
def test_every_family_declares_its_papers_batch(config):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    assert cfg.auto_scale_lr.base_batch_size == BASE_BATCH[config]
    assert cfg.train_dataloader.batch_size == BASE_BATCH[config]


@pytest.mark.parametrize('tool', [train_tool, test_tool])
def test_no_persistent_workers_reaches_every_split(tool, monkeypatch,
                                                   tmp_path):
    cfg = _captured_cfg(monkeypatch, tool, [COOP, '--no-persistent-workers',
                                            '--work-dir', str(tmp_path)])
    loaders = [cfg.test_dataloader.base, cfg.test_dataloader.new]
    if tool is train_tool:
        loaders += [cfg.train_dataloader, cfg.val_dataloader.base,
                    cfg.val_dataloader.new]
    assert [d.persistent_workers for d in loaders] == [False] * len(loaders)
    cfg = _captured_cfg(monkeypatch, tool, [COOP, '--work-dir',
                                            str(tmp_path)])
    assert cfg.test_dataloader.new.persistent_workers is True


# ---------------------------------------------------------- test.py flags
def test_out_item_pred_writes_every_prediction_per_split(in_demo):
    assert test_tool.main([CONFIG, CKPT, '--work-dir', 'w_pred', '--out',
                           'pred.json', '--out-item', 'pred']) == 0
    written = json.load(open('pred.json'))
    assert set(written['splits']) == {'base', 'new'}
    new = written['splits']['new']
    assert new['classes'] == NEW and len(new['predictions']) == 15
    first = new['predictions'][0]
    assert first['gt_class'] == NEW[first['gt_label']]
    assert osp.basename(osp.dirname(first['img_path'])) == \
        first['gt_class'].replace(' ', '_')
    assert len(first['topk_classes']) == 5
    # the metrics are the predictions' accuracy
    hits = np.mean([p['pred_label'] == p['gt_label']
                    for p in new['predictions']])
    assert written['metrics']['new/accuracy/top1'] == pytest.approx(
        100 * hits, abs=1e-4)
    # --out alone (and --out-item metrics) keeps writing the metrics
    assert test_tool.main([CONFIG, CKPT, '--work-dir', 'w_pred', '--out',
                           'metrics.json', '--out-item', 'metrics']) == 0
    assert json.load(open('metrics.json')) == written['metrics']


def test_out_item_without_out_is_one_line(in_demo, capsys):
    assert test_tool.main([CONFIG, CKPT, '--out-item', 'pred']) == 2
    assert '--out is not given' in _one_error_line(capsys)


def test_show_dir_draws_each_split_with_its_own_class_names(
        in_demo, monkeypatch):
    from mmpretrain.visualization import UniversalVisualizer
    drawn = []
    original = UniversalVisualizer.visualize_cls

    def spy(self, image, data_sample, classes=None, **kwargs):
        drawn.append((kwargs['out_file'], list(classes),
                      data_sample.gt_label.item(),
                      data_sample.pred_label.tolist(), image.shape))
        return original(self, image, data_sample, classes=classes, **kwargs)

    monkeypatch.setattr(UniversalVisualizer, 'visualize_cls', spy)
    assert test_tool.main([CONFIG, CKPT, '--work-dir', 'w_show',
                           '--show-dir', 'show', '--show-num', '4',
                           '--show-topk', '2']) == 0
    for split, names in (('base', BASE), ('new', NEW)):
        files = sorted(glob.glob(f'show/{split}/*.png'))
        assert len(files) == 4, files  # 15 images, every 4th
        mine = [d for d in drawn if f'/{split}/' in d[0]]
        assert all(d[1] == names for d in mine)
        for _, _, label, top, shape in mine:
            assert 0 <= label < 15 and len(top) == 2
            assert shape == (64, 64, 3)
        assert Image.open(files[0]).size[0] >= 224  # enlarged for the text
    # a folder with files mmpl did not write is refused
    open('show/new/mine.png', 'w').close()
    assert test_tool.main([CONFIG, CKPT, '--work-dir', 'w_show',
                           '--show-dir', 'show']) == 2


@pytest.mark.parametrize('argv, expected', [
    (['--show-dir', '{tmp}/s', '--show-num', '0'],
     '--show-num must be an integer >= 1'),
    (['--show-dir', '{tmp}/s', '--show-topk', '-1'],
     '--show-topk must be an integer >= 1'),
    (['--show-dir', '{tmp}/a_file'], 'is a file, not a folder'),
    (['--out', '{tmp}/p.json', '--out-item', 'everything'],
     "invalid choice: 'everything'")])
def test_test_py_bad_show_and_out_options_are_one_line(argv, expected,
                                                       tmp_path, capsys):
    (tmp_path / 'a_file').write_text('x')
    argv = [COOP, '--work-dir', str(tmp_path)] + [
        a.format(tmp=tmp_path) for a in argv]
    try:
        code = test_tool.main(argv)
    except SystemExit as exc:  # argparse's errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and expected in err, err
    assert err.count('mmpl: error: ') == 1, err


# ------------------------------------------------------ confusion matrix
def test_confusion_matrix_bad_colour_map_is_one_line(capsys):
    assert confusion_tool.main([COOP, '--out-dir', 'x', '--cmap',
                                'rainbowz']) == 2
    assert 'not a matplotlib colour map' in _one_error_line(capsys)


def test_confusion_matrix_per_split_with_class_names(in_demo, capsys):
    assert confusion_tool.main([CONFIG, CKPT, '--out-dir', 'cm',
                                '--work-dir', 'w_cm']) == 0
    assert sorted(os.listdir('cm')) == ['.mmpl_outputs.json', 'base.csv',
                                        'base.png', 'new.csv', 'new.png']
    results = json.load(open('w_cm/test_results.json'))['metrics']
    for split, names in (('base', BASE), ('new', NEW)):
        rows = list(csv.reader(open(f'cm/{split}.csv')))
        assert rows[0][1:] == names and [r[0] for r in rows[1:]] == names
        counts = np.array([[int(v) for v in r[1:]] for r in rows[1:]])
        assert counts.sum() == 15 and (counts.sum(1) == 1).all()
        assert 100 * np.trace(counts) / 15 == pytest.approx(
            results[f'{split}/accuracy/top1'], abs=1e-4)
    # again: its own files are replaced, a foreign one is not
    assert confusion_tool.main([CONFIG, CKPT, '--out-dir', 'cm',
                                '--work-dir', 'w_cm']) == 0
    os.makedirs('cm2')
    open('cm2/new.png', 'w').close()
    capsys.readouterr()
    assert confusion_tool.main([CONFIG, CKPT, '--out-dir', 'cm2']) == 2
    assert 'was not written by mmpl' in _one_error_line(capsys)


# -------------------------------------------------------- zero-shot infer
def test_infer_zero_shot_equals_the_zero_shot_model(in_demo, capsys):
    from helpers import shapes_classifier
    folder = 'work_dirs/demo/data/shapes/images/red_circle'
    names = 'red circle,orange circle,red square,blue star'
    assert infer_tool.main([folder, '--arch', ARCH, '--pretrained',
                            PRETRAINED, '--classes', names, '--out',
                            'zs.json']) == 0
    by_arch = json.load(open('zs.json'))
    assert by_arch['checkpoint'] is None
    assert by_arch['zero_shot']['arch'] == 'mmpl-shapes-vit'  # its name
    # the same through the demo's config (its CLIP, its test pipeline)
    assert infer_tool.main([folder, '--config', CONFIG, '--classes', names,
                            '--out', 'zs_cfg.json']) == 0
    by_config = json.load(open('zs_cfg.json'))
    assert by_config['results'] == by_arch['results']
    # ... and the ZeroShotCLIP classifier's own predict
    from mmpl.apis import PromptInferencer
    model = shapes_classifier(dict(type='ZeroShotCLIP'), names.split(','))
    inferencer = PromptInferencer.zero_shot(ARCH, PRETRAINED,
                                            classes=names.split(','))
    packed = [inferencer.prepare(r['image']) for r in by_arch['results']]
    from mmengine.dataset import pseudo_collate
    with torch.no_grad():
        samples = model.test_step(pseudo_collate(packed))
    assert [names.split(',')[int(s.pred_label)] for s in samples] == [
        r['pred_class'] for r in by_arch['results']]
    # one line for what cannot work
    capsys.readouterr()
    assert infer_tool.main([folder, '--arch', ARCH, '--classes', 'a']) == 2
    assert 'random CLIP' in _one_error_line(capsys)
    assert infer_tool.main([folder, '--arch', ARCH, '--pretrained',
                            PRETRAINED]) == 2
    assert 'no class names' in _one_error_line(capsys)
    assert infer_tool.main([folder]) == 2
    assert 'no checkpoint after it' in _one_error_line(capsys)


# ------------------------------------------------------- attention maps
@pytest.fixture(scope='module')
def ctp_tft():
    """CTP+TFT at initialisation on the shipped tiny CLIP, the demo's
    config (no checkpoint, no data read)."""
    from mmpl.apis import PromptInferencer
    from mmpl_lab.shapes import METHODS, embedded_config
    cfg = embedded_config('CTP+TFT', osp.join(ROOT, METHODS['CTP+TFT']),
                          'unused', 'unused')
    torch.manual_seed(0)  # CTP's meta-net, so TFT's text queries
    return PromptInferencer(config=cfg, device='cpu', classes=NAMES[:2])


def _pairs(num: int, seed: int = 0):
    """``num`` two-object images (BGR arrays) and their (left, right)
    names, colours and shapes distinct."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < num:
        a, b = rng.choice(len(NAMES), 2, replace=False)
        if all(x != y for x, y in zip(NAMES[a].split(), NAMES[b].split())):
            image = np.asarray(render_pair(NAMES[a], NAMES[b], rng))
            out.append((image[..., ::-1].copy(), NAMES[a], NAMES[b]))
    return out


def test_each_map_puts_its_mass_on_the_named_object(ctp_tft):
    """On 20 two-object images (40 cases) the CLIP and CTP maps of each
    object's class lie on that object's half in >= 80 % of the cases, the
    TFT map in >= 75 % (its queries are CTP's prompted text features, here
    with a random meta-net; measured: CLIP 36, CTP 36, TFT 33, and TFT
    30-36 over meta-net seeds 0-4)."""
    from mmpl.apis.attention import prompt_attention
    left = LEFT.view(4, 4)
    hits = {}
    for image, a, b in _pairs(20):
        ctp_tft.set_classes([a, b])
        maps = prompt_attention(ctp_tft, image)
        assert maps.image.shape == (64, 64, 3)
        assert set(maps.maps) == {'CLIP', 'CTP', 'TFT'}
        for kind, m in maps.maps.items():  # (2, 4, 4)
            assert m.shape == (2, 4, 4)
            torch.testing.assert_close(m.sum((1, 2)), torch.ones(2))
            on_a = m[0][left].sum() > m[0][~left].sum()
            on_b = m[1][~left].sum() > m[1][left].sum()
            hits[kind] = hits.get(kind, 0) + int(on_a) + int(on_b)
    assert hits['CLIP'] >= 32 and hits['CTP'] >= 32 and hits['TFT'] >= 30, \
        hits


def test_tvp_reports_its_kept_classes():
    from mmpl.apis import PromptInferencer
    from mmpl.apis.attention import prompt_attention
    from mmpl_lab.shapes import METHODS, embedded_config
    cfg = embedded_config('FTP+TVP', osp.join(ROOT, METHODS['FTP+TVP']),
                          'unused', 'unused')
    image, a, b = _pairs(1, seed=3)[0]
    others = [n for n in NAMES if n not in (a, b)][:6]
    inferencer = PromptInferencer(config=cfg, device='cpu',
                                  classes=[a, b] + others)
    maps = prompt_attention(inferencer, image)
    assert set(maps.maps) == {'CLIP'}  # FTP has no patch attention
    kept = maps.kept
    assert kept.any() and kept.sum() <= 8
    assert maps.class_weights[~kept].abs().sum() == 0
    assert float(maps.class_weights[kept].sum()) == pytest.approx(1.0)
    assert float(maps.affinity.sum()) == pytest.approx(1.0)


def test_vis_prompt_attention_cli(in_demo, capsys):
    image, a, b = _pairs(1)[0]
    Image.fromarray(image[..., ::-1]).save('pair.png')
    assert vis_tool.main([CONFIG, CKPT, 'pair.png', '--classes',
                          f'{a},{b}', '--out', 'att.png']) == 0
    assert Image.open('att.png').size[0] > 400
    out = capsys.readouterr()
    assert a in out.out and 'maps: CLIP, CTP, TFT' in out.err
    # no checkpoint: the frozen CLIP's map and the initial prompts
    assert vis_tool.main([CONFIG, 'pair.png', '--classes', f'{a},{b}',
                          '--out', 'att0.png']) == 0
    for argv, expected in [
            ([CONFIG, CKPT, 'nope.png', '--out', 'x.png'],
             'image path not found'),
            ([CONFIG, CKPT, 'work_dirs', '--out', 'x.png'],
             'not an image file'),
            ([CONFIG, 'pair.png', CKPT, '--out', 'x.png'],
             'is a checkpoint, not an image'),
            ([CONFIG, CKPT, 'pair.png', '--out', 'att.png'], 'exists'),
            ([CONFIG, CKPT, 'pair.png', '--out', 'x.jpg'], 'must end in'),
            ([CONFIG, CKPT, 'pair.png', '--out', 'x.png', '--classes',
              ','], '--classes is empty')]:
        capsys.readouterr()
        assert vis_tool.main(argv) == 2, argv
        assert expected in _one_error_line(capsys)


def test_results_file_keeps_a_tensor_metric(in_demo):
    """mmpretrain's ConfusionMatrix as the test metric: test_results.json
    holds it as lists (it stopped the run with a TypeError before)."""
    from mmpl import apis
    cfg = apis.load_config(CONFIG, work_dir='w_tensor')
    cfg.test_evaluator = dict(type='ConfusionMatrix')
    metrics = apis.test(cfg, CKPT)
    written = json.load(open('w_tensor/test_results.json'))['metrics']
    assert written['new/confusion_matrix/result'] == \
        metrics['new/confusion_matrix/result'].tolist()
    assert len(written['base/confusion_matrix/result']) == 15


# ----------------------------------------------- the README's Tools section
def _tools_commands():
    """The README's Tools section: each ``python ...`` line of its bash
    blocks, continuation lines joined and comments dropped; variables set
    by a ``NAME=$(python -c ...)`` line are substituted."""
    section = README.split('\n## Tools\n')[1].split('\n## ')[0]
    commands, variables = [], {}
    for block in re.findall(r'```bash\n(.*?)```', section, flags=re.S):
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.split(' #')[0].strip()
            found = re.match(r'([A-Z_]+)=\$\(python -c "(.*)"\)(\S*)$', line)
            if found:
                out = {}
                exec(found.group(2).replace('print(', 'out["v"] = ('),
                     {'out': out})
                variables[found.group(1)] = out['v'] + found.group(3)
            elif line.startswith('python '):
                for name, value in variables.items():
                    line = line.replace(f'${name}', value)
                commands.append(shlex.split(line)[1:])
    return commands


TOOLS_COMMANDS = _tools_commands()


def test_readme_tools_section_has_an_example_per_tool():
    tools = {words[0] for words in TOOLS_COMMANDS}
    assert {'tools/train.py', 'tools/test.py', 'tools/infer.py',
            'tools/analysis_tools/confusion_matrix.py',
            'tools/visualization/vis_prompt_attention.py'} <= tools
    assert sum('mmpretrain' in t for t in tools) == 3


@pytest.mark.parametrize('words', TOOLS_COMMANDS,
                         ids=[osp.basename(w[0]) for w in TOOLS_COMMANDS])
def test_readme_tools_section_runs_verbatim(words, in_demo, monkeypatch):
    """Each command of the Tools section, as written, in a folder holding
    the demo's outputs: mmpl's tools through their ``main``, mmpretrain's
    as scripts (``__main__``)."""
    import matplotlib
    matplotlib.use('Agg')
    argv = []
    for w in words[1:]:  # the shell's glob expansion
        argv += sorted(glob.glob(w)) if '*' in w else [w]
    if words[0].startswith('tools/'):
        assert load_tool(words[0]).main(argv) == 0, words
    else:
        monkeypatch.setattr(sys, 'argv', [words[0]] + argv)
        try:
            runpy.run_path(words[0], run_name='__main__')
        except SystemExit as exc:
            assert not exc.code, words
    outputs = [argv[i + 1] for i, w in enumerate(argv[:-1])
               if w in ('--out', '--out-dir', '--show-dir', '--save-path')]
    assert all(osp.exists(p) for p in outputs), outputs
