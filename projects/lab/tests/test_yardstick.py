"""The yardstick's statistics on hand-written records, its world and tasks,
and a small smoke of its command (projects/lab/tools/yardstick.py)."""
import json
import math
import os
import os.path as osp
from dataclasses import replace

import numpy as np
import pytest

from mmpl_lab import tasks as world_tasks
from mmpl_lab import world
from mmpl_lab import yardstick as ys
from mmpl_lab.clips import WORLD_CLIP
from mmpl_lab.yardstick import Record
from helpers import load_tool

ZS = ys.ZERO_SHOT


def _records():
    """Two tasks, three seeds. Per-seed task averages (base, new):
    zero-shot (50, 60) every seed; CoOp (70, 50), (72, 48), (74, 46)."""
    out = []
    for seed in (1, 2, 3):
        out += [Record(ZS, 't1', seed, 40.0, 70.0),
                Record(ZS, 't2', seed, 60.0, 50.0)]
        d = 2.0 * (seed - 1)
        out += [Record('CoOp', 't1', seed, 60.0 + d, 40.0 - d),
                Record('CoOp', 't2', seed, 80.0 + d, 60.0 - d)]
    return out


def test_per_seed_averages_tasks_and_takes_the_hm_of_the_averages():
    seeds = ys.per_seed(_records(), 'CoOp', ['t1', 't2'])
    assert sorted(seeds) == [1, 2, 3]
    assert seeds[2]['base'] == 72.0 and seeds[2]['new'] == 48.0
    assert seeds[2]['hm'] == pytest.approx(2 * 72 * 48 / 120)
    # a seed that misses a task is left out, not averaged over fewer tasks
    partial = [r for r in _records() if not (r.seed == 3 and r.task == 't2')]
    assert sorted(ys.per_seed(partial, 'CoOp', ['t1', 't2'])) == [1, 2]


def test_method_summary_is_mean_and_sample_std_and_hm_of_means():
    s = ys.method_summary(ys.per_seed(_records(), 'CoOp', ['t1', 't2']))
    assert s['base'] == [pytest.approx(72.0), pytest.approx(2.0)]
    assert s['new'] == [pytest.approx(48.0), pytest.approx(2.0)]
    # HM of the averaged base and new, not the mean of the seeds' HMs
    assert s['hm'][0] == pytest.approx(2 * 72 * 48 / 120)
    hms = [2 * b * n / (b + n) for b, n in ((70, 50), (72, 48), (74, 46))]
    assert s['hm'][0] != pytest.approx(np.mean(hms), abs=1e-6)
    assert s['hm'][1] == pytest.approx(np.std(hms, ddof=1))
    assert s['seeds'] == 3


def test_orderings_are_paired_on_task_and_seed_units():
    """CoOp - zero-shot base per (task, seed): 20, 22, 24 on both tasks:
    diff 22, each task's variance 4 over 3 seeds, se sqrt(2 * 4/3) / 2,
    df 2 + 2 (Welch-Satterthwaite with equal variances)."""
    s = ys.summarise(_records(), [ZS, 'CoOp'], ['t1', 't2'])
    a = s['orderings']['a']
    assert a['diff'] == pytest.approx(22.0)
    assert a['se'] == pytest.approx(math.sqrt(2 * 4 / 3) / 2)
    assert a['df'] == pytest.approx(4.0) and a['n_pairs'] == 6
    half = 2.776445 * a['se']  # t(0.975, 4)
    assert a['ci'] == pytest.approx([22 - half, 22 + half], abs=1e-5)
    assert a['holds'] and a['mde'] > 0
    assert set(a['per_task']) == {'t1', 't2'}
    assert a['per_task']['t1']['diff'] == pytest.approx(22.0)
    assert a['per_task']['t1']['n_pairs'] == 3


def test_summary_orderings_hold_only_in_the_published_direction():
    s = ys.summarise(_records(), [ZS, 'CoOp'], ['t1', 't2'])
    a, b = s['orderings']['a'], s['orderings']['b']
    assert a['holds'] and a['diff'] == pytest.approx(22.0)
    # (b) zero-shot new - CoOp new: 60 - (50, 48, 46) = 10, 12, 14
    assert b['holds'] and b['diff'] == pytest.approx(12.0)
    flipped = [Record(r.method, r.task, r.seed, r.new, r.base)
               for r in _records()]
    s = ys.summarise(flipped, [ZS, 'CoOp'], ['t1', 't2'])
    assert not s['orderings']['a']['holds']
    assert not s['orderings']['b']['holds']
    assert set(s['methods']) == {ZS, 'CoOp'}
    assert s['per_task']['t1']['CoOp']['new'][0] == pytest.approx(62.0)


def test_the_gate_has_seven_published_orderings():
    assert list(ys.ORDERINGS) == list('abcdefg')
    assert ys.ORDERINGS['f'][:3] == ('KgCoOp', ZS, 'base')
    assert ys.ORDERINGS['g'][:3] == ('MaPLe', 'CoCoOp', 'new')
    assert set(ys.PUBLISHED) == set(ys.ORDERINGS) | set(ys.CLAIMS)


def test_the_papers_claims_are_reported_apart_from_the_gate():
    """(h) CTP+TFT and (i) FTP+TVP over CoCoOp in new and HM, (j) DGPrompt
    over MaPLe in HM: targets with their verdicts, not gate orderings."""
    assert {k: v[:3] for k, v in ys.CLAIMS.items()} == {
        'h-new': ('CTP+TFT', 'CoCoOp', 'new'),
        'h-hm': ('CTP+TFT', 'CoCoOp', 'hm'),
        'i-new': ('FTP+TVP', 'CoCoOp', 'new'),
        'i-hm': ('FTP+TVP', 'CoCoOp', 'hm'),
        'j-hm': ('DGPrompt', 'MaPLe', 'hm')}
    records = [Record(m, t, seed, base + seed, new + (t == 't2'))
               for seed in (1, 2, 3) for t in ('t1', 't2')
               for m, base, new in (('CTP+TFT', 70.0, 62.0),
                                    ('CoCoOp', 70.0, 60.0))]
    s = ys.summarise(records, ['CTP+TFT', 'CoCoOp'], ['t1', 't2'])
    assert set(s['claims']) == {'h-new', 'h-hm'}
    assert s['claims']['h-new']['diff'] == pytest.approx(2.0)
    assert s['claims']['h-new']['holds']
    assert 'h-new' not in s['orderings']
    md = ys.to_markdown(s)
    assert "(h-new) CTP+TFT new > CoCoOp new (75.72 vs 71.69)" in md
    rep = ys.replication(s, s)
    assert rep['claims']['h-hm'] == dict(first='holds', second='holds',
                                         agree=True)


def test_ablations_are_paired_hm_differences():
    records = [Record(m, t, seed, base + seed + (t == 't2'), new)
               for seed in (1, 2, 3) for t in ('t1', 't2')
               for m, base, new in (('DGPrompt', 80.0, 70.0),
                                    ('IVLP', 80.0, 60.0))]
    s = ys.summarise(records, ['DGPrompt', 'IVLP'], ['t1', 't2'])
    d = s['ablations']['DGPrompt vs IVLP']
    hm = lambda b, n: 2 * b * n / (b + n)  # noqa: E731
    # the HMs of the averages (base 82.5, new 70 vs 60)
    assert d['diff'] == pytest.approx(hm(82.5, 70) - hm(82.5, 60))
    assert d['significant'] == (d['ci'][0] > 0 or d['ci'][1] < 0)
    assert d['n_pairs'] == 6 and d['measure'] == 'hm'
    # base and new apart, each with its interval
    assert d['base']['diff'] == pytest.approx(0.0)
    assert d['new']['diff'] == pytest.approx(10.0)
    assert '| DGPrompt vs IVLP | +0.00 ' in ys.to_markdown(s)


def test_records_file_is_read_and_a_bad_line_is_one_error(tmp_path):
    for r in _records():
        if r.task == 't1' and (r.method == 'CoOp' or r.seed == 1):
            ys.append_record(str(tmp_path), replace(
                r, task='polygons', seed=0 if r.method == ZS else r.seed,
                seconds=1.5))
    found = ys.recorded(str(tmp_path))
    assert (ZS, 'polygons', 0) in found and len(found) == 4
    records = ys.read_records(str(tmp_path), [ZS, 'CoOp'], ['polygons'],
                              [1, 2, 3])
    # zero-shot's one run is paired with every seed
    assert sorted((r.method, r.seed) for r in records) == sorted(
        [(ZS, 1), (ZS, 2), (ZS, 3), ('CoOp', 1), ('CoOp', 2), ('CoOp', 3)])
    assert all(r.base == 40.0 for r in records if r.method == ZS)
    with open(tmp_path / ys.RECORDS_FILE, 'a') as f:
        f.write('{"method": "CoOp"}\n')
    with pytest.raises(ys.ConfigError, match='records.jsonl:5 is not'):
        ys.recorded(str(tmp_path))


# ------------------------------------------------------------- the world
def test_captions_are_true_of_their_scene_and_constraints_are_exact():
    rng = np.random.default_rng(0)
    scenes = [world.random_scene(rng) for _ in range(200)]
    said = [world.caption(s, rng)[1] for s in scenes]
    truth = world.caption_constraints(scenes, said)
    assert truth.diagonal().all()
    a = world.Scene((world.Obj('star', 'red', 'striped', 'big', 'left'), ),
                    'grass')
    b = world.Scene((world.Obj('star', 'blue', 'striped', 'big', 'left'), ),
                    'grass')
    assert world.satisfies(a, dict(shape='star', pattern='striped'))
    assert world.satisfies(b, dict(shape='star', pattern='striped'))
    assert not world.satisfies(b, dict(shape='star', colour='red'))
    assert not world.satisfies(a, dict(shape='star', background='sand'))


def test_pretraining_styles_are_named_and_constrain_captions():
    """Half the pretraining scenes are in a named style; a caption naming
    it is true only of scenes in that style, a caption naming none of any
    style; every task is rendered in a world style its template omits."""
    rng = np.random.default_rng(1)
    scenes = [world.random_scene(rng) for _ in range(400)]
    styles = [s.style for s in scenes]
    assert 0.4 < styles.count('clean') / len(styles) < 0.6
    assert set(styles) == set(world.STYLES)
    named = [(s, c) for s in scenes for c, said in [world.caption(s, rng)]
             if 'style' in said]
    assert named and all(c.startswith(f'a {s.style} photo of')
                         for s, c in named)
    star = world.Obj('star', 'red')
    blurry = world.Scene((star, ), style='blurry')
    dark = world.Scene((star, ), style='dark')
    assert world.satisfies(blurry, dict(shape='star', style='blurry'))
    assert not world.satisfies(dark, dict(shape='star', style='blurry'))
    assert world.satisfies(dark, dict(shape='star'))
    for task in world_tasks.TASKS.values():
        for shift in (task.shift, task.second_shift):
            # a world style, or a cast pretraining never showed
            assert (shift in world.STYLES) != (
                shift in world_tasks.UNSEEN_STYLES) and shift != 'clean'
            assert shift not in task.template.format('x')
        assert task.second_shift != task.shift
        assert f'a {task.shift} photo of' in task.styled_template()
    img = world.render_batch([blurry, dark], seed=0)
    assert float(img[1].mean()) < float(img[0].mean()) - 40  # dark is dark


def test_task_classes_split_into_base_covering_every_value():
    for task in world_tasks.TASKS.values():
        names = task.classes
        assert len(set(names)) == len(names)
        base = names[:-(-len(names) // 2)]
        words = {w for n in names for w in n.split(' ')}
        assert words == {w for n in base for w in n.split(' ')}, task.name
        assert task.test_per_class() * (len(names) // 2) >= 1000


def _draw_many(task, name, n=2000):
    rng = np.random.default_rng(0)
    typical = task.typical_values()[name]
    return typical, [task.draw(name, rng, typical) for _ in range(n)]


def test_classes_have_typical_unnamed_attributes_and_keep_named_ones():
    """Each attribute a class name does not fix takes the class's typical
    value with probability TYPICAL (plus chance), the named ones never
    change, and classes differ in their typical values."""
    task = world_tasks.TASKS['colours']
    assert set(task.named) == {'colour', 'shape'}
    attributes = task.typical_values()
    assert len({tuple(a.items()) for a in attributes.values()}) > 12
    typical, scenes = _draw_many(task, 'red star')
    assert set(typical) == {'pattern', 'size', 'position', 'background'}
    assert all(s.objects[0].colour == 'red' and s.objects[0].shape == 'star'
               for s in scenes)
    for key, value in typical.items():
        got = [s.background if key == 'background'
               else getattr(s.objects[0], key) for s in scenes]
        chance = 1 / len(world_tasks.UNNAMED_VALUES[key])
        expected = task.typical_p + (1 - task.typical_p) * chance
        assert abs(np.mean([g == value for g in got]) - expected) < 0.04
    # the typical values are the task's, the same in every process
    assert typical == {'pattern': 'plain', 'size': 'big', 'position': 'left',
                       'background': 'water'}
    # without typical attributes every unnamed attribute is uniform
    plain = replace(task, typical_p=0.0)
    _, scenes = _draw_many(plain, 'red star')
    assert abs(np.mean([s.background == typical['background']
                        for s in scenes]) - 0.2) < 0.04


def test_tasks_render_deterministically_and_differ_in_style():
    task = world_tasks.TASKS['colours']
    x1, y1 = world_tasks.sample_split(task, 2, seed=5)
    x2, y2 = world_tasks.sample_split(task, 2, seed=5)
    assert (x1 == x2).all() and (y1 == y2).all()
    assert x1.shape == (2 * len(task.classes), 64, 64, 3)
    other = world_tasks.sample_split(world_tasks.TASKS['patterns'], 2, 5)[0]
    assert abs(float(x1.mean()) - float(other.mean())) > 5


def test_task_images_come_in_its_two_styles():
    task = world_tasks.TASKS['patterns']  # dark (bluish) or sepia (brown)
    which = task.second_style_images(4000, seed=3)
    assert abs(which.mean() - task.second_style_p) < 0.03
    assert (which == task.second_style_images(4000, seed=3)).all()
    x, _ = world_tasks.sample_split(task, 8, seed=3)
    which = task.second_style_images(len(x), seed=3)
    assert 0 < which.sum() < len(x)
    warmth = x[..., 0].astype(float).mean((1, 2)) - x[..., 2].mean((1, 2))
    # each image in its own style: sepia's warm cast, dark's bluish one
    assert warmth[which].mean() > warmth[~which].mean() + 30
    one = replace(task, second_style_p=0.0)
    assert not one.second_style_images(100, seed=3).any()
    x1, _ = world_tasks.sample_split(one, 8, seed=3)
    w1 = x1[..., 0].astype(float).mean((1, 2)) - x1[..., 2].mean((1, 2))
    assert abs(w1.mean() - warmth[~which].mean()) < 10


def test_write_task_refuses_a_foreign_folder(tmp_path):
    (tmp_path / 'mine.txt').write_text('user data')
    with pytest.raises(Exception, match='refusing'):
        world_tasks.write_task(world_tasks.TASKS['polygons'], str(tmp_path))
    assert (tmp_path / 'mine.txt').read_text() == 'user data'


# ---------------------------------------------------------------- command
def test_unknown_method_or_task_is_one_line(capsys):
    main = load_tool('projects/lab/tools/yardstick.py').main
    assert main(['--methods', 'CoOP', '--work-dir', '/nonexistent']) == 2
    err = capsys.readouterr().err
    assert err.startswith('mmpl: error:') and "'CoOp'" in err
    assert main(['--tasks', 'colour']) == 2
    assert main(['--seeds', '-1', '--work-dir', '/nonexistent']) == 2
    assert main(['--seeds', '2', '2', '--work-dir', '/nonexistent']) == 2
    assert '--seeds must be distinct' in capsys.readouterr().err


def test_summary_only_writes_every_output(tmp_path):
    """The command's summary step on finished runs (results.json written by
    hand in the run folders)."""
    main = load_tool('projects/lab/tools/yardstick.py').main
    for r in _records():
        if r.task != 't1':
            continue
        out = ys.run_dir(str(tmp_path), 'polygons', r.method, r.seed)
        import os
        os.makedirs(out, exist_ok=True)
        with open(osp.join(out, 'results.json'), 'w') as f:
            json.dump({'metrics': {'base/accuracy/top1': r.base,
                                   'new/accuracy/top1': r.new}}, f)
    assert main(['--work-dir', str(tmp_path), '--tasks', 'polygons',
                 '--methods', ZS, 'CoOp', '--summary-only']) == 0
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['methods']['CoOp']['base'][0] == pytest.approx(62.0)
    assert summary['orderings']['a']['holds']
    for name in ('yardstick.md', 'yardstick.csv', 'yardstick.png'):
        assert (tmp_path / name).stat().st_size > 0


def test_headroom_probe_learns_from_shots_and_starts_at_zero_shot():
    """The probe of :mod:`mmpl_lab.headroom`: from text weights that
    get every class wrong, 16 shots of separable features make it right;
    the shots' class means need no text at all."""
    import torch

    from mmpl_lab import headroom
    torch.manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(4, 16), dim=-1)
    def feats(n):  # noqa: E306
        y = torch.arange(4).repeat_interleave(n)
        x = centres[y] + 0.05 * torch.randn(len(y), 16)
        return torch.nn.functional.normalize(x, dim=-1), y
    (train_x, train_y), (test_x, test_y) = feats(16), feats(50)
    wrong = centres.roll(1, 0)  # class k's text = class k-1's centre
    assert ((test_x @ wrong.t()).argmax(-1) == test_y).float().mean() == 0
    assert headroom.probe_accuracy(train_x, train_y, test_x, test_y,
                                   wrong) > 95
    assert headroom.prototype_accuracy(train_x, train_y, test_x, test_y,
                                       4) == 100
    # the class means are the shots' own: shuffled labels lose them
    shuffled = train_y[torch.randperm(len(train_y))]
    assert headroom.prototype_accuracy(train_x, shuffled, test_x, test_y,
                                       4) < 60


def _attributes(scene):
    obj = scene.objects[0]
    return dict(shape=obj.shape, colour=obj.colour, pattern=obj.pattern,
                size=obj.size, position=obj.position,
                background=scene.background)


def test_every_task_keeps_the_attributes_its_class_names_fix():
    """``Task.named`` is what the task's scene function fixes, and the
    typical values never change those."""
    for task in world_tasks.TASKS.values():
        typical = task.typical_values()
        rng = np.random.default_rng(0)
        for name in task.classes:
            free = [_attributes(task.scene(name, rng)) for _ in range(40)]
            fixed = {k for k in free[0] if len({f[k] for f in free}) == 1}
            assert fixed == set(task.named), (task.name, name, fixed)
            for _ in range(20):
                drawn = _attributes(task.draw(name, rng, typical[name]))
                assert all(drawn[k] == free[0][k] for k in fixed), name


def test_write_task_refuses_data_of_other_typical_attributes(tmp_path):
    task = world_tasks.TASKS['polygons']
    world_tasks.write_task(task, str(tmp_path), test_per_class=1)
    with pytest.raises(Exception, match='typical'):
        world_tasks.write_task(replace(task, typical_p=0.5), str(tmp_path),
                               test_per_class=1)
    with pytest.raises(Exception,
                       match=r"'second_style': \['cluttered', 0.0\]"):
        world_tasks.write_task(replace(task, second_style_p=0.0),
                               str(tmp_path), test_per_class=1)


def test_prompt_depth_keeps_its_share_of_the_towers(tmp_path):
    """The depth rule: the papers' depths count ViT-B/16's 12 layers."""
    assert ys.clip_layers(WORLD_CLIP['arch']) == 4
    expected = {'MaPLe': (3, None), 'DGPrompt': (3, None),
                'FTP+TVP': (None, 1), 'FTP': (None, None),
                'CoOp': (None, None)}
    for method, (text_depth, visual_depth) in expected.items():
        model = ys.run_config(method, str(tmp_path / 'data'),
                              str(tmp_path / 'out'), 1).model
        visual = model.get('visual_prompt')
        assert model.text_prompt.get('depth') == text_depth, method
        assert (visual or {}).get('depth') == visual_depth, method


@pytest.mark.heavy
def test_typical_attributes_are_what_shots_show_beyond_the_name():
    """On the lab's mmpl-world-vit: 16 shots' class means (no text) beat
    zero-shot by far on a task's base classes because of the typical
    attributes; with every unnamed attribute random they do not."""
    from mmpl.clip.builder import build_open_clip
    from mmpl_lab.headroom import task_headroom
    model = build_open_clip(**WORLD_CLIP).eval()
    task = world_tasks.TASKS['patterns']  # v4: +44 with, -12 without
    typical = task_headroom(model, task, test_per_class=15)
    assert typical['prototypes'] > typical['zero_shot'] + 15
    random = task_headroom(model, replace(task, typical_p=0.0),
                           test_per_class=15)
    assert random['prototypes'] < random['zero_shot'] + 5


@pytest.mark.heavy
def test_command_smoke_runs_resumes_and_refuses_other_settings(tmp_path,
                                                               capsys):
    """The real command on the lab's mmpl-world-vit: zero-shot + CoOp on
    one task, one seed, a quick look (4 test images per class, 1 epoch);
    one progress line per run and no runner log on the console; a second
    call runs nothing; other settings in the same work dir are refused."""
    main = load_tool('projects/lab/tools/yardstick.py').main
    args = ['--work-dir', str(tmp_path), '--tasks', 'polygons', '--methods',
            ZS, 'CoOp', '--seeds', '1', '--jobs', '1', '--test-per-class',
            '4', '--max-epochs', '1']
    assert main(args) == 0
    out = capsys.readouterr().out
    progress = [line for line in out.splitlines() if line.startswith('[')]
    assert len(progress) == 2 and 'polygons' in progress[1], out
    assert 'mmengine - INFO' not in out and 'Epoch(train)' not in out
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert set(summary['methods']) == {ZS, 'CoOp'}
    assert summary['quick_look'] == {'test_per_class': 4, 'max_epochs': 1}
    assert set(summary['orderings']) == {'a', 'b'}
    assert set(summary['headroom']['polygons']) == {
        'zero_shot', 'styled', 'probe', 'probe_ridge', 'prototypes',
        'context_sgd'}
    report = (tmp_path / 'yardstick.md').read_text()
    assert 'linear probe' in report and 'class means, no text' in report
    assert '4-token context, SGD' in report
    log = list(tmp_path.glob('runs/polygons/CoOp/seed1/*/*.log'))
    assert log and 'Epoch(train)' in log[0].read_text()
    assert main(args) == 0  # resumes: nothing left to run
    assert not [line for line in capsys.readouterr().out.splitlines()
                if line.startswith('[')]
    assert main(args[:-2]) == 2  # the protocol's epochs: not comparable
    assert 'use another --work-dir' in capsys.readouterr().err
    # the records go on elsewhere: a fresh work dir with a copy of them
    # (and the headroom) makes no run again and gives the same summary
    lines = (tmp_path / 'records.jsonl').read_text().splitlines()
    assert sorted(json.loads(x)['method'] for x in lines) == sorted(
        [ZS, 'CoOp'])
    other = tmp_path / 'elsewhere'
    other.mkdir()
    for name in ('records.jsonl', 'headroom.json'):
        (other / name).write_text((tmp_path / name).read_text())
    assert main(['--work-dir', str(other)] + args[2:]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines()
                if line.startswith('[')]
    assert json.loads((other / 'summary.json').read_text())['methods'] == \
        summary['methods']


# ------------------------------------------------------- the CLIP recipe
def test_multi_positive_loss_is_clip_loss_for_distinct_captions():
    import torch
    import torch.nn.functional as F

    from mmpl_lab.pretrain import multi_positive_loss
    torch.manual_seed(0)
    logits = torch.randn(6, 6) * 5
    eye = torch.eye(6, dtype=torch.bool)
    clip = (F.cross_entropy(logits, torch.arange(6)) +
            F.cross_entropy(logits.t(), torch.arange(6))) / 2
    torch.testing.assert_close(multi_positive_loss(logits, eye), clip)
    # caption 0 is also true of image 1: image 1 matching caption 0 is no
    # longer penalised as a negative
    both = eye.clone()
    both[0, 1] = True
    logits[1, 0] = 10.0
    assert multi_positive_loss(logits, both) < multi_positive_loss(logits,
                                                                   eye)


def test_recipe_runs_with_real_clip_temperature(tmp_path):
    import math

    from mmpl_lab.pretrain import LOGIT_SCALE, pretrain
    model, history = pretrain(steps=2, batch_size=8, pool_size=16,
                              threads=1, log_every=1, log=lambda _: None)
    assert [h['step'] for h in history] == [1, 2]
    assert all(math.isfinite(h['loss']) for h in history)
    assert model.logit_scale.exp().item() <= LOGIT_SCALE * 1.0001
    assert model.visual.grid_size == (8, 8)  # the 8x8 patch grid


@pytest.mark.heavy
def test_world_clip_text_scale_lets_4_context_tokens_learn():
    """The shipped world CLIP (v2.1) holds the world's words at
    ``TEXT_EMBEDDING_RMS`` per dimension, and a 4-token context from "a
    photo of a" learns under the papers' SGD (2e-3, momentum 0.9, 100
    steps: the headroom's context probe) on the polygons base classes.
    Its text stream multiplied back to v2's scale by
    ``pretrain.rescale_text_stream`` is the same function, and there the
    context does not learn (why KgCoOp did not learn on v2)."""
    import torch

    from mmpl.clip.builder import build_open_clip
    from mmpl_lab import headroom, pretrain
    task = world_tasks.get_task('polygons')
    names = task.classes[:len(task.classes) // 2]
    train, train_y = world_tasks.sample_split(task, 16, 1)
    test, test_y = world_tasks.sample_split(task, 30, 1001)
    keep, keep_test = train_y < len(names), test_y < len(names)
    gain = {}
    for label, factor in (('v2.1', 1.0), ('v2 scale', 1 / 5.06)):
        model = build_open_clip(**WORLD_CLIP).eval()
        before = pretrain.text_weights(model, names, task.template)
        rms = pretrain.text_embedding_rms(model)
        if factor != 1:
            pretrain.rescale_text_stream(model, factor)
        assert pretrain.text_embedding_rms(model) == pytest.approx(
            rms / factor, rel=1e-3)
        after = pretrain.text_weights(model, names, task.template)
        assert float((before * after).sum(-1).min()) > 1 - 1e-3
        x = pretrain.image_features(model, pretrain.to_tensor(train[keep]))
        x_test = pretrain.image_features(
            model, pretrain.to_tensor(test[keep_test]))
        y, y_test = (torch.from_numpy(train_y[keep]),
                     torch.from_numpy(test_y[keep_test]))
        zero_shot = pretrain.top1(x_test, after, y_test)
        gain[label] = headroom.context_probe_accuracy(
            model, names, x, y, x_test, y_test) - zero_shot
    assert pretrain.text_embedding_rms(build_open_clip(
        WORLD_CLIP['arch'], WORLD_CLIP['pretrained'])) == pytest.approx(
            pretrain.TEXT_EMBEDDING_RMS, rel=0.01)
    assert gain['v2.1'] > 10 and gain['v2 scale'] < 5, gain


def test_replication_counts_a_verdict_only_where_both_sets_agree():
    first = ys.summarise(_records(), [ZS, 'CoOp'], ['t1', 't2'])
    first['seeds'] = [1, 2, 3]
    # the second set: CoOp's new accuracy above zero-shot's, (b) fails
    flipped = [replace(r, seed=r.seed + 3, new=r.new + 20.0)
               if r.method == 'CoOp' else replace(r, seed=r.seed + 3)
               for r in _records()]
    second = ys.summarise(flipped, [ZS, 'CoOp'], ['t1', 't2'])
    second['seeds'] = [4, 5, 6]
    rep = ys.replication(first, second)['orderings']
    assert rep['a'] == dict(first='holds', second='holds', agree=True)
    assert rep['b'] == dict(first='holds', second='fails', agree=False)
    table = ys.replication_markdown(first, second)
    assert 'seeds 1 2 3' in table and 'seeds 4 5 6' in table
    assert '| (b) CoOp new < zero-shot new (63.22 vs 74.22) |' in table
    assert table.splitlines()[3].endswith('| does not replicate |')


def test_confirms_needs_a_summary_with_disjoint_seeds(tmp_path, capsys):
    main = load_tool('projects/lab/tools/yardstick.py').main
    first = tmp_path / 'first'
    first.mkdir()
    (first / 'summary.json').write_text(json.dumps(dict(seeds=[1, 2])))
    args = ['--work-dir', str(tmp_path / 'second'), '--summary-only']
    assert main(args + ['--seeds', '2', '3', '--confirms', str(first)]) == 2
    assert 'seeds [2] are in both runs' in capsys.readouterr().err
    assert main(args + ['--confirms', str(tmp_path)]) == 2
    assert 'no summary.json there' in capsys.readouterr().err


def test_summary_only_leaves_a_folder_without_runs_untouched(tmp_path, capsys):
    """A folder of the user's own summary.json / yardstick.md is not a
    yardstick work dir: --summary-only refuses it and replaces nothing."""
    main = load_tool('projects/lab/tools/yardstick.py').main
    for name in ('summary.json', 'yardstick.md'):
        (tmp_path / name).write_text('mine')
    assert main(['--work-dir', str(tmp_path), '--summary-only']) == 2
    assert 'was not written by mmpl' in capsys.readouterr().err
    # a run (hours of work) is refused before it starts, too
    assert main(['--work-dir', str(tmp_path), '--tasks', 'polygons',
                 '--methods', ZS, '--seeds', '1']) == 2
    assert 'was not written by mmpl' in capsys.readouterr().err
    assert [p.read_text() for p in sorted(tmp_path.iterdir())] == ['mine'] * 2
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert main(['--work-dir', str(empty), '--summary-only']) == 2
    assert 'holds no finished run' in capsys.readouterr().err
    assert not list(empty.iterdir())


def test_a_file_or_a_broken_run_is_one_line(tmp_path, capsys):
    """--work-dir naming a file, and a run folder whose results.json an
    interrupted run left half-written: one line each, nothing written."""
    main = load_tool('projects/lab/tools/yardstick.py').main
    a_file = tmp_path / 'a_file'
    a_file.write_text('mine')
    assert main(['--work-dir', str(a_file), '--summary-only']) == 2
    assert 'is a file, not a folder' in capsys.readouterr().err
    assert a_file.read_text() == 'mine'
    run = ys.run_dir(str(tmp_path / 'w'), 'polygons', 'CoOp', 1)
    os.makedirs(run)
    with open(osp.join(run, 'results.json'), 'w') as f:
        f.write('{"metr')
    assert main(['--work-dir', str(tmp_path / 'w'), '--tasks', 'polygons',
                 '--methods', 'CoOp', '--seeds', '1', '--summary-only']) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('mmpl: error: ') and '\n' not in err
    assert "is not a finished run's results" in err
