"""The embedded benchmark: generated compositional data, the shipped tiny
CLIP, its pretraining script, and learning by every method family."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmpl_lab.clips import SHAPES_CLIP
from mmpl_lab.shapes import (COLOURS, METHODS, SCHEDULE, SHAPES, ZERO_SHOT,
                             class_names, render_batch, run_methods,
                             write_downstream_dataset)
from helpers import ROOT, load_tool

#: run first; one pytest-xdist worker runs the whole module (its module
#: fixtures are costly: conftest.SHARED_FIXTURE_MODULES)
pytestmark = pytest.mark.heavy

#: the pretraining script is the subject of the tests that use it
pretrain_tool = load_tool('projects/lab/tools/pretrain_tiny_clip.py')


def test_base_classes_cover_every_attribute_and_new_are_unseen_combos():
    names = class_names()
    assert len(names) == len(set(names)) == len(COLOURS) * len(SHAPES)
    base, new = names[:15], names[15:]
    assert {n.split()[0] for n in base} == set(COLOURS)
    assert {n.split()[1] for n in base} == set(SHAPES)
    assert not set(base) & set(new)


def test_rendering_is_deterministic_and_shifted():
    names = class_names()[:6]
    a = render_batch(names, seed=3, distribution='downstream')
    assert np.array_equal(a, render_batch(names, seed=3,
                                          distribution='downstream'))
    assert not np.array_equal(a, render_batch(names, seed=4,
                                              distribution='downstream'))
    clean = render_batch(names, seed=3, distribution='pretrain')
    assert a.shape == clean.shape == (6, 64, 64, 3)
    assert not np.array_equal(a, clean)


def test_downstream_split_layout_is_read_by_the_real_reader(tmp_path):
    from mmpl.datasets import CoOpCustomDataset
    from mmpl_lab.shapes import shapes_reader
    root = write_downstream_dataset(str(tmp_path / 'shapes'),
                                    images_per_class=(2, 1, 1), size=32)
    cfg = shapes_reader(root)
    cfg.pop('type')
    train = CoOpCustomDataset(split='train', **cfg)
    assert len(train) == 60
    assert train.metainfo['classes'] == tuple(class_names())
    assert train.metainfo['dataset'] == 'shapes'
    with pytest.raises(FileExistsError):
        (tmp_path / 'mine').mkdir()
        (tmp_path / 'mine' / 'holiday.jpg').write_bytes(b'x')
        write_downstream_dataset(str(tmp_path / 'mine'))


def _zero_shot(clip, distribution='downstream', per_class=10, seed=11):
    """Top-1 (%) over the 15 base and the 15 new classes separately."""
    names = class_names()
    labels = torch.arange(30).repeat_interleave(per_class)
    images = pretrain_tool.to_tensor(render_batch(
        [names[i] for i in labels], seed, distribution=distribution))
    with torch.no_grad():
        text = F.normalize(clip.encode_token_ids(clip.tokenize(
            [f'a photo of a {n}.' for n in names])), dim=-1)
        logits = F.normalize(clip.encode_image(images), dim=-1) @ text.t()
    base = labels < 15
    acc_base = (logits[base][:, :15].argmax(-1) == labels[base]).float()
    acc_new = (logits[~base][:, 15:].argmax(-1) == labels[~base] - 15).float()
    return acc_base.mean().item() * 100, acc_new.mean().item() * 100


def test_shipped_tiny_clip_is_pretrained_but_shift_limits_zero_shot():
    from mmpl.clip import FrozenCLIP
    clip = FrozenCLIP(**SHAPES_CLIP)
    clean_base, clean_new = _zero_shot(clip, 'pretrain')
    assert clean_base > 90 and clean_new > 90
    base, new = _zero_shot(clip)
    # well above chance (6.7 % for 15 classes), clearly below ceiling
    assert 25 < base < 80 and 25 < new < 80, (base, new)


# every trained method of the demo, with its real config
FAMILIES = {label: config for label, config in METHODS.items()
            if label != ZERO_SHOT}


@pytest.fixture(scope='module')
def benchmark(tmp_path_factory):
    """The downstream data and the zero-shot row, once per module."""
    work = tmp_path_factory.mktemp('embedded')
    data_root = write_downstream_dataset(str(work / 'data' / 'shapes'))
    rows = run_methods({ZERO_SHOT: FAMILIES['CoOp']}, data_root,
                       str(work / 'zero_shot'), config_root=ROOT)
    return data_root, work, rows[-1]


#: the default run's schedule: half the demo's epochs (CoOp: base 60.67
#: against zero-shot 51.00, HM 55.02 against 50.32, one seed; the demo's 30
#: epochs took twice as long for the same verdict); the --run-slow families
#: keep the demo's schedule
TEST_SCHEDULE = dict(SCHEDULE, max_epochs=15)
#: run by default: CoOp (the baseline every method builds on, about 15 s);
#: the other families are the release check behind --run-slow (about 3
#: minutes), as ``make demo`` runs them all for the README's table
DEFAULT_FAMILIES = ('CoOp', )
#: families expected to miss the learning bar (strict xfail; none since
#: issue 31: CTP+TFT met it once its default dropped the text-to-image
#: alignment term, which cost it base accuracy on the yardstick too)
WEAK_ON_THIS_YARDSTICK: set = set()


def _family(label: str):
    marks = [] if label in DEFAULT_FAMILIES else [pytest.mark.slow]
    if label in WEAK_ON_THIS_YARDSTICK:
        # strict: a pass means the marker is stale; raises: a crash is
        # still a failure, only the learning assertion is expected
        marks.append(pytest.mark.xfail(
            reason='base < zero-shot + 4 on the embedded benchmark (see '
            'WEAK_ON_THIS_YARDSTICK)', strict=True, raises=AssertionError))
    return pytest.param(label, marks=marks)


@pytest.mark.parametrize('label', [_family(label) for label in
                                   sorted(FAMILIES)])
def test_every_method_family_learns(benchmark, label, capsys):
    """A short schedule on the base classes: base accuracy clearly above
    zero-shot CLIP's, and HM above zero-shot HM. The console shows one line
    for the run (the runner's log is in its folder, with the last epoch's
    checkpoint only)."""
    config = FAMILIES[label]
    assert osp.isfile(osp.join(ROOT, config)), f'{config} is missing'
    data_root, work, zero_shot = benchmark
    capsys.readouterr()
    rows = run_methods({label: config}, data_root,
                       str(work / label.replace('+', '_')),
                       schedule=TEST_SCHEDULE if label in DEFAULT_FAMILIES
                       else SCHEDULE, config_root=ROOT)
    shown = capsys.readouterr()
    lines = (shown.out + shown.err).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'[1/1] {label} '), lines
    run_dir = work / label.replace('+', '_') / label.replace('+', '_')
    assert len(list(run_dir.rglob('epoch_*.pth'))) == 1
    assert [r.dataset for r in rows] == ['shapes', 'average']
    trained = rows[-1]
    assert trained.method == label
    assert trained.base > zero_shot.base + 4, (trained, zero_shot)
    assert trained.hm > zero_shot.hm, (trained, zero_shot)


@pytest.mark.slow  # about 2-4 minutes: a release check (--run-slow)
def test_pretraining_script_reproduces_a_similar_model(tmp_path):
    """The lab's recipe (projects/lab/tools/pretrain_tiny_clip.py
    defaults, about 4 minutes on 2 CPU cores) still reaches the lab
    weights' zero-shot quality (38.7 % over all 30 classes on shifted
    renderings, chance 3.3 %), and writes a loadable fp16 state dict,
    never overwriting one."""
    from mmpl.clip import FrozenCLIP
    model, log = pretrain_tool.pretrain(log_every=1000)
    step, loss, downstream_acc = log[-1]
    assert step == 2000 and downstream_acc > 30, log
    out = tmp_path / 'tiny.pt'
    torch.save({k: v.half() for k, v in model.state_dict().items()}, out)
    clip = FrozenCLIP(SHAPES_CLIP['arch'], pretrained=str(out),
                      quick_gelu=False)
    clean_base, clean_new = _zero_shot(clip, 'pretrain')
    assert clean_base > 80 and clean_new > 80
    assert pretrain_tool.main(['--out', str(out), '--steps', '1']) == 2
