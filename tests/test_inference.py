"""Use a trained prompt: mmpl.apis.PromptInferencer and tools/infer.py.

The embedded CoOp and CoCoOp (tiny shipped CLIP, generated colour x shape
images) train for one short epoch on the 15 base classes; the checkpoint
then classifies images of the 15 *new* classes (never seen in training),
through the API and through tools/infer.py, and the predictions must equal
the model's own ``predict`` on the same images after ``set_classes`` to
the same names."""
import csv
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from mmpl.apis import PromptInferencer
from mmpl_lab.shapes import (TEMPLATE, class_names, render_batch,
                             write_downstream_dataset)
from helpers import load_tool

#: run first; one pytest-xdist worker runs the whole module (its module
#: fixtures are costly: conftest.SHARED_FIXTURE_MODULES)
pytestmark = pytest.mark.heavy

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
INFER = osp.join(ROOT, 'tools', 'infer.py')
BASE, NEW = class_names()[:15], class_names()[15:]
METHODS = {'CoOp': 'configs/coop/coop_vitb16_b2n_eurosat.py',
           'CoCoOp': 'configs/cocoop/cocoop_vitb16_b2n_eurosat.py'}


def embedded_config(config: str, data_root: str, work_dir: str) -> Config:
    """``config`` on the embedded benchmark: one epoch, no validation."""
    from mmpl.utils.config_tools import set_runtime_seed
    from mmpl_lab.shapes import to_embedded_benchmark
    cfg = Config.fromfile(osp.join(ROOT, config))
    to_embedded_benchmark(cfg, data_root, max_epochs=1, batch_size=16,
                          lr=0.01)
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.logger.interval = 50
    set_runtime_seed(cfg, 1)
    return cfg


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """The downstream dataset (for training) and a folder of new-class
    images (for inference)."""
    work = tmp_path_factory.mktemp('infer')
    data_root = write_downstream_dataset(str(work / 'shapes'),
                                         images_per_class=(8, 0, 0))
    labels = [i % len(NEW) for i in range(20)]
    images = render_batch([NEW[i] for i in labels], seed=5,
                          distribution='downstream')
    folder = work / 'new_images'
    for i, img in enumerate(images):
        sub = folder / ('a' if i < 10 else 'b')
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(sub / f'{i:02d}.png')
    return work, data_root, str(folder), images


@pytest.fixture(scope='module')
def trained(data):
    """method -> (checkpoint, the rewritten config): one epoch each."""
    from mmengine.runner import Runner
    work, data_root, _, _ = data
    out = {}
    for label, config in METHODS.items():
        cfg = embedded_config(config, data_root, str(work / label))
        runner = Runner.from_cfg(cfg)
        runner.train()
        ckpt = osp.join(cfg.work_dir, 'epoch_1.pth')
        assert osp.isfile(ckpt)
        out[label] = (ckpt, cfg)
    return out


def reference_predictions(cfg: Config, ckpt: str, paths, classes):
    """The classifier's own predict: built from the config, checkpoint
    loaded by mmengine, the config's test pipeline (with its loader),
    ``set_classes(classes)``."""
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS, TRANSFORMS

    from mmpl.engine.checkpoint import register_checkpoint_safe_globals
    register_checkpoint_safe_globals()
    model = MODELS.build(cfg.model)
    load_checkpoint(model, ckpt, map_location='cpu', strict=False)
    model.eval()
    model.set_classes(classes, TEMPLATE)
    pipeline = Compose([TRANSFORMS.build(t) for t in
                        cfg.test_dataloader.new.dataset.dataset.pipeline])
    data = pseudo_collate([pipeline(dict(img_path=p)) for p in paths])
    with torch.no_grad():
        samples = model.test_step(data)
    return torch.stack([s.pred_score for s in samples])


def folder_images(folder):
    return sorted(osp.join(r, f) for r, _, fs in os.walk(folder) for f in fs)


@pytest.mark.parametrize('label', sorted(METHODS))
def test_checkpoint_alone_classifies_new_classes_like_predict(
        trained, data, label):
    ckpt, cfg = trained[label]
    _, _, folder, images = data
    inferencer = PromptInferencer(ckpt, classes=NEW, device='cpu')
    assert inferencer.checkpoint_classes == BASE  # trained on base only
    results = inferencer(folder, topk=3, batch_size=7)
    paths = folder_images(folder)
    assert [r['image'] for r in results] == paths
    ref = reference_predictions(cfg, ckpt, paths, NEW)
    assert [r['pred_label'] for r in results] == ref.argmax(1).tolist()
    assert [r['pred_class'] for r in results] == [
        NEW[i] for i in ref.argmax(1).tolist()]
    top = ref.topk(3, dim=1)
    assert torch.allclose(torch.tensor([r['topk_scores'] for r in results]),
                          top.values, atol=1e-5)
    assert [r['topk_labels'] for r in results] == top.indices.tolist()
    # something was learned that transfers: well above chance (1/15)
    truth = [i % len(NEW) for i in range(20)]
    acc = np.mean([r['pred_label'] == t for r, t in zip(results, truth)])
    assert acc > 0.2, acc

    # arrays (BGR, as mmcv reads them) and PIL images: the same predictions
    bgr = [np.ascontiguousarray(img[..., ::-1]) for img in images[:3]]
    pil = [Image.fromarray(img) for img in images[:3]]
    by_array = inferencer(bgr + pil, topk=1)
    assert [r['image'] for r in by_array] == [f'<input {i}>'
                                              for i in range(6)]
    expected = [r['pred_label'] for r in results[:3]]
    assert [r['pred_label'] for r in by_array] == expected * 2

    # with the config instead of the checkpoint meta: the same model
    from_config = PromptInferencer(ckpt, config=cfg, classes=NEW,
                                   device='cpu')
    again = from_config(paths[:5], topk=3)
    assert [r['topk_labels'] for r in again] == top.indices[:5].tolist()


def test_default_classes_and_class_count_changes(trained, data):
    ckpt, _ = trained['CoOp']
    _, _, folder, _ = data
    inferencer = PromptInferencer(ckpt)
    assert inferencer.classes == BASE
    res = inferencer(folder_images(folder)[:2], topk=20)
    assert len(res[0]['topk_classes']) == 15  # capped at C
    inferencer.set_classes(['red star', 'blue heart', 'green moon'])
    res = inferencer(folder_images(folder)[:2], topk=2)
    assert all(r['topk_classes'][0] in ('red star', 'blue heart',
                                        'green moon') for r in res)
    sums = [sum(r['topk_scores']) for r in inferencer(
        folder_images(folder)[:2], topk=3)]
    assert np.allclose(sums, 1.0, atol=1e-5)
    # a string is not a list of names (it was read as 'c', 'a', 't')
    from mmpl.utils.errors import ConfigError
    with pytest.raises(ConfigError, match=r"got the string 'cat,dog'.*"
                       r"\['cat', 'dog'\]"):
        inferencer.set_classes('cat,dog')
    with pytest.raises(ConfigError, match="got the string 'cat'"):
        PromptInferencer(ckpt, classes='cat')
    assert inferencer.classes == ['red star', 'blue heart', 'green moon']


def test_old_checkpoint_without_model_meta_needs_config(trained, tmp_path):
    ckpt, cfg = trained['CoOp']
    state = torch.load(ckpt, weights_only=False)
    state['meta']['mmpl'].pop('model')
    old = tmp_path / 'old.pth'
    torch.save(state, old)
    with pytest.raises(ValueError, match='--config'):
        PromptInferencer(str(old))
    assert PromptInferencer(str(old), config=cfg).classes == BASE


def test_mmpretrain_inferencer_works_on_the_built_model_only(trained, data):
    """What the module docstring says about mmpretrain's
    ImageClassificationInferencer."""
    from mmpretrain.apis import ImageClassificationInferencer
    ckpt, cfg = trained['CoOp']
    _, _, folder, _ = data
    paths = folder_images(folder)[:4]
    with pytest.raises(AttributeError):  # named splits: no .dataset
        ImageClassificationInferencer(cfg, pretrained=ckpt, device='cpu')
    ours = PromptInferencer(ckpt, classes=NEW, device='cpu')
    theirs = ImageClassificationInferencer(ours.model, device='cpu')
    got = theirs(paths)
    assert [r['pred_class'] for r in got] == [
        r['pred_class'] for r in ours(paths)]


# ------------------------------------------------------------- tools/infer.py
infer_tool = load_tool('tools/infer.py')


def run_infer(*args, cwd=None):
    return subprocess.run([sys.executable, INFER, *map(str, args)],
                          capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_cli_writes_the_api_predictions(trained, data, tmp_path, capsys):
    ckpt, _ = trained['CoCoOp']
    _, _, folder, _ = data
    classes = tmp_path / 'new.txt'
    classes.write_text('# the new classes\n' + '\n'.join(NEW) + '\n\n')
    broken = tmp_path / 'imgs'
    broken.mkdir()
    (broken / 'broken.png').write_bytes(b'not an image')
    out = tmp_path / 'res.json'
    proc = run_infer(folder, broken, ckpt, '--classes-file', classes,
                     '--topk', 2, '--out', out, '--batch-size', 8,
                     '--device', 'cpu')
    assert proc.returncode == 0, proc.stderr
    api = PromptInferencer(ckpt, classes=NEW, device='cpu')(folder, topk=2)
    written = json.loads(out.read_text())
    assert [r['pred_class'] for r in written['results']] == [
        r['pred_class'] for r in api]
    assert [r['topk_classes'] for r in written['results']] == [
        r['topk_classes'] for r in api]
    assert written['skipped'][0]['image'] == str(broken / 'broken.png')
    assert 'skipped 1 unreadable image' in proc.stderr
    assert str(broken / 'broken.png') in proc.stderr
    # never overwrites
    before = out.read_text()
    capsys.readouterr()
    assert infer_tool.main([str(folder), ckpt, '--classes', 'a,b', '--out',
                            str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('mmpl: error: ') and \
        len(err.strip().splitlines()) == 1
    assert out.read_text() == before
    # CSV, classes on the command line; stdout lists one line per image
    out_csv = tmp_path / 'res.csv'
    assert infer_tool.main([folder_images(folder)[0], ckpt, '--classes',
                            ','.join(NEW[:4]), '--topk', '2', '--out',
                            str(out_csv)]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 1 and rows[0]['pred_class'] in NEW[:4]
    assert rows[0]['top2_class'] in NEW[:4]


@pytest.mark.parametrize('case', ['missing image', 'missing class file',
                                  'empty class file', 'missing checkpoint',
                                  'no images in folder', 'bad out suffix',
                                  'only a corrupt image',
                                  'latin-1 class file', 'device gpu0',
                                  'device cuda without a GPU'])
def test_cli_one_line_errors(trained, data, tmp_path, capsys, case):
    if case == 'device cuda without a GPU' and torch.cuda.is_available():
        pytest.skip('this machine has a GPU')
    ckpt, _ = trained['CoOp']
    _, _, folder, _ = data
    empty = tmp_path / 'empty.txt'
    empty.write_text('\n# nothing\n')
    (tmp_path / 'nothing').mkdir()
    args = {
        'missing image': [tmp_path / 'nope.png', ckpt],
        'missing class file': [folder, ckpt, '--classes-file',
                               tmp_path / 'nope.txt'],
        'empty class file': [folder, ckpt, '--classes-file', empty],
        'missing checkpoint': [folder, tmp_path / 'nope.pth'],
        'no images in folder': [tmp_path / 'nothing', ckpt],
        'bad out suffix': [folder, ckpt, '--out', tmp_path / 'r.txt'],
        'only a corrupt image': [tmp_path / 'corrupt', ckpt],
        'latin-1 class file': [folder, ckpt, '--classes-file',
                               tmp_path / 'latin1.txt'],
        'device gpu0': [folder, ckpt, '--device', 'gpu0'],
        'device cuda without a GPU': [folder, ckpt, '--device', 'cuda'],
    }[case]
    (tmp_path / 'latin1.txt').write_bytes('café\ndog\n'.encode('latin-1'))
    (tmp_path / 'corrupt').mkdir()
    (tmp_path / 'corrupt' / 'broken.png').write_bytes(b'not a png')
    capsys.readouterr()
    assert infer_tool.main(list(map(str, args))) == 2
    err = capsys.readouterr().err
    # a folder shows mmengine's progress bar on stderr
    lines = [x for x in err.strip().splitlines() if not x.startswith('[')]
    assert len(lines) == 1 and lines[0].startswith('mmpl: error: '), err
    assert '. ' in lines[0][len('mmpl: error: '):]  # what, then what to do


@pytest.mark.parametrize('case', ['None', 'an int', 'a float array',
                                  'a zero-size array', 'a list with None',
                                  'topk 0', 'device gpu0', 'missing config',
                                  'broken config'])
def test_api_bad_inputs_are_one_line_errors(trained, tmp_path, case):
    """The API refuses what it cannot classify with one line (a
    ConfigError / MissingFileError: a ValueError / FileNotFoundError), never
    an assertion, a ZeroDivisionError or a silent guess."""
    from mmpl.utils.errors import MMPLError, user_error_message
    ckpt, _ = trained['CoOp']
    broken = tmp_path / 'broken.py'
    broken.write_text('model = dict(\n')
    inputs = {'None': None, 'an int': 3,
              'a float array': np.random.rand(64, 64, 3),
              'a zero-size array': np.zeros((0, 0, 3), np.uint8),
              'a list with None': [None]}
    with pytest.raises(MMPLError) as info:
        if case in inputs:
            PromptInferencer(ckpt, device='cpu')(inputs[case])
        elif case == 'topk 0':
            PromptInferencer(ckpt, device='cpu')(
                np.zeros((64, 64, 3), np.uint8), topk=0)
        elif case == 'device gpu0':
            PromptInferencer(ckpt, device='gpu0')
        else:
            PromptInferencer(ckpt, device='cpu', config=str(
                broken if case == 'broken config' else tmp_path / 'no.py'))
    line = user_error_message(info.value)
    assert line and '\n' not in line and '. ' in line, line


def test_class_specific_contexts_refuse_other_class_names(data, tmp_path):
    """CoOp with one context per class (CSC) learned a context for each
    training class, in order: other names, even as many, are refused; the
    training classes classify."""
    from mmengine.runner import Runner

    from mmpl.utils.errors import ConfigError
    _, data_root, folder, _ = data
    cfg = embedded_config(METHODS['CoOp'], data_root, str(tmp_path / 'csc'))
    cfg.model.text_prompt.update(class_specific=True, num_classes=len(BASE))
    Runner.from_cfg(cfg).train()
    ckpt = osp.join(cfg.work_dir, 'epoch_1.pth')
    inferencer = PromptInferencer(ckpt, device='cpu')
    assert inferencer.classes == BASE
    assert len(inferencer(folder)) == 20
    for other in (NEW, BASE[::-1]):
        with pytest.raises(ConfigError, match='one context per class'):
            PromptInferencer(ckpt, classes=other, device='cpu')
        with pytest.raises(ConfigError, match='one context per class'):
            inferencer.set_classes(other)
