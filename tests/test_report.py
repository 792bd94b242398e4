"""The base-to-new report tool against values computed by hand."""
import csv
import json

import pytest

from helpers import load_tool


def _write(tmp_path, method, dataset, seed, base, new):
    folder = tmp_path / f'{method}_{dataset}_{seed}'
    folder.mkdir()
    (folder / 'results.json').write_text(json.dumps(dict(
        method=method, dataset=dataset, seed=seed, metrics={
            'base/accuracy/top1': base, 'new/accuracy/top1': new,
            'harmonic_mean': 0.0})))


@pytest.fixture
def runs(tmp_path):
    _write(tmp_path, 'CoOp', 'eurosat', 1, 90.0, 50.0)
    _write(tmp_path, 'CoOp', 'eurosat', 2, 80.0, 60.0)
    _write(tmp_path, 'CoOp', 'dtd', 1, 70.0, 40.0)
    _write(tmp_path, 'CoCoOp', 'eurosat', 1, 85.0, 65.0)
    return tmp_path


def test_table_matches_hand_computation(runs, tmp_path):
    from mmpl.evaluation.report import aggregate_b2n, find_results
    rows = {(r.method, r.dataset): r
            for r in aggregate_b2n(find_results([str(runs)]))}
    euro = rows['CoOp', 'eurosat']
    assert (euro.base, euro.new) == (85.0, 55.0)
    assert euro.hm == pytest.approx(2 * 85 * 55 / 140)
    assert euro.base_std == pytest.approx(7.0710678)  # sample std of 90, 80
    assert euro.seeds == [1, 2]
    avg = rows['CoOp', 'average']
    # HM of the averaged base and new, not the mean of per-dataset HMs
    assert (avg.base, avg.new) == (77.5, 47.5)
    assert avg.hm == pytest.approx(2 * 77.5 * 47.5 / 125)
    assert avg.hm != pytest.approx(
        (rows['CoOp', 'eurosat'].hm + rows['CoOp', 'dtd'].hm) / 2)
    assert rows['CoCoOp', 'average'].hm == pytest.approx(2 * 85 * 65 / 150)


def test_tool_writes_markdown_csv_png(runs, tmp_path):
    tool = load_tool('tools/analysis_tools/report.py')
    out = tmp_path / 'report'
    assert tool.main([str(runs), '--protocols', 'b2n', '--out-dir',
                      str(out)]) == 0
    md = (out / 'b2n_table.md').read_text()
    assert '| CoOp | eurosat | 85.00 ± 7.07 | 55.00 ± 7.07 | 66.79 |' in md
    assert '| CoOp | average | 77.50 | 47.50 | 58.90 |' in md
    with open(out / 'b2n_table.csv') as f:
        rows = list(csv.DictReader(f))
    assert rows[0]['method'] == 'CoCoOp' and float(rows[0]['hm']) == \
        pytest.approx(73.6667, abs=1e-3)
    assert (out / 'b2n_plot.png').read_bytes()[:4] == b'\x89PNG'


def test_report_replaces_its_own_files_only(runs, tmp_path, capsys):
    """A second report into the same folder replaces the first one's files;
    a file of the user's with a report's name is refused before anything is
    written (one line, exit 2), and left as it was."""
    tool = load_tool('tools/analysis_tools/report.py')
    out = tmp_path / 'report'
    argv = [str(runs), '--protocols', 'b2n', '--out-dir', str(out)]
    assert tool.main(argv) == 0
    assert tool.main(argv) == 0  # its own files
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'b2n_table.csv').write_text('my numbers')
    capsys.readouterr()
    assert tool.main(argv[:-1] + [str(mine)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('mmpl: error: ') and '\n' not in err
    assert 'was not written by mmpl' in err
    assert (mine / 'b2n_table.csv').read_text() == 'my numbers'
    assert sorted(p.name for p in mine.iterdir()) == ['b2n_table.csv']
    (tmp_path / 'a_file').write_text('x')
    assert tool.main(argv[:-1] + [str(tmp_path / 'a_file')]) == 2
    assert 'is a file, not a folder' in capsys.readouterr().err


def test_duplicate_seed_is_an_error(runs):
    from mmpl.evaluation.report import aggregate_b2n, find_results
    dup = runs / 'again'
    dup.mkdir()
    (dup / 'results.json').write_text(
        (runs / 'CoOp_eurosat_1' / 'results.json').read_text())
    with pytest.raises(ValueError, match='two results for CoOp on eurosat'):
        aggregate_b2n(find_results([str(runs)]))


def _record(tmp_path, name, method, seed, protocol, metrics, num_shots=16,
            filename='results.json'):
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / filename).write_text(json.dumps(dict(
        method=method, dataset=next(iter(metrics)).split('/')[0], seed=seed,
        protocol=protocol, num_shots=num_shots, metrics=metrics)))


def _top1(**accs):
    return {f'{d}/accuracy/top1': v for d, v in accs.items()}


def test_fewshot_rule_per_shots_over_datasets(tmp_path):
    """Mean ± std over seeds per (dataset, shots); the average row per shot
    count over the datasets that have it."""
    from mmpl.evaluation.report import build_tables, find_results
    for shots, seed, euro, dtd in [(1, 1, 40.0, 20.0), (1, 2, 50.0, 30.0),
                                   (16, 1, 80.0, 60.0), (16, 2, 90.0, 64.0)]:
        _record(tmp_path, f'e{shots}_{seed}', 'CoOp', seed, 'fewshot',
                _top1(eurosat=euro), shots)
        _record(tmp_path, f'd{shots}_{seed}', 'CoOp', seed, 'fewshot',
                _top1(dtd=dtd), shots)
    _record(tmp_path, 'e4', 'CoOp', 1, 'fewshot', _top1(eurosat=70.0), 4)
    table = build_tables(find_results([str(tmp_path)]))['fewshot']
    assert [c.key for c in table.columns] == ['shots1', 'shots4', 'shots16']
    euro = table.row('CoOp', 'eurosat')
    assert euro.cells['shots1'].mean == 45.0
    assert euro.cells['shots1'].std == pytest.approx(7.0710678)
    assert euro.cells['shots16'].mean == 85.0
    assert euro.cells['shots4'].mean == 70.0 and euro.seeds == [1, 2]
    assert 'shots4' not in table.row('CoOp', 'dtd').cells
    avg = table.row('CoOp', 'average')
    assert avg.mean('shots1') == pytest.approx((45.0 + 25.0) / 2)
    assert avg.mean('shots16') == pytest.approx((85.0 + 62.0) / 2)
    assert avg.mean('shots4') == 70.0  # only EuroSAT has 4 shots
    # Markdown: one column per shot count, ± std with several seeds
    from mmpl.evaluation.report import to_markdown
    md = to_markdown(table)
    assert '| method | dataset | 1 shot | 4 shots | 16 shots | seeds |' in md
    assert '| CoOp | dtd | 25.00 ± 7.07 | - | 62.00 ± 2.83 | 1,2 |' in md
    assert '| CoOp | average | 35.00 | 70.00 | 73.50 | 1,2 |' in md


def test_transfer_rules_average_targets_not_source(tmp_path):
    """xd: average over the target datasets (ImageNet, the source, is
    reported, not averaged); dg likewise over the four variants; a
    missing target is named in the note."""
    from mmpl.evaluation.protocols import XD_TARGETS
    from mmpl.evaluation.report import build_tables, find_results
    xd1 = dict(imagenet=70.0, **{d: 50.0 + i for i, d in
                                 enumerate(XD_TARGETS)})
    xd2 = dict(xd1, imagenet=72.0, eurosat=xd1['eurosat'] + 4.0)
    _record(tmp_path, 'xd1', 'MaPLe', 1, 'xd', _top1(**xd1),
            filename='test_results.json')
    _record(tmp_path, 'xd2', 'MaPLe', 2, 'xd', _top1(**xd2),
            filename='test_results.json')
    # the end-of-training evaluation of the same runs is not the xd table
    _record(tmp_path, 'xd1', 'MaPLe', 1, 'xd', _top1(imagenet=69.0))
    _record(tmp_path, 'dg1', 'MaPLe', 1, 'dg', _top1(
        imagenet=70.0, imagenetv2=64.0, imagenet_sketch=48.0,
        imagenet_a=50.0, imagenet_r=76.0), filename='test_results.json')
    _record(tmp_path, 'dg_coop', 'CoOp', 1, 'dg', _top1(
        imagenet=71.0, imagenetv2=64.0, imagenet_a=49.0),
        filename='test_results.json')
    tables = build_tables(find_results([str(tmp_path)]))
    assert set(tables) == {'xd', 'dg'}
    xd = tables['xd']
    assert [r.dataset for r in xd.rows] == ['imagenet', *XD_TARGETS,
                                            'average']
    assert xd.row('MaPLe', 'imagenet').cells['top1'].mean == 71.0
    assert xd.row('MaPLe', 'eurosat').cells['top1'].mean == \
        xd1['eurosat'] + 2.0
    expected = (sum(xd1[d] for d in XD_TARGETS) + 2.0) / 10
    assert xd.row('MaPLe', 'average').mean('top1') == pytest.approx(expected)
    dg = tables['dg']
    assert dg.row('MaPLe', 'average').mean('top1') == pytest.approx(
        (64 + 48 + 50 + 76) / 4)
    assert dg.row('CoOp', 'average').mean('top1') == pytest.approx(
        (64 + 49) / 2)
    assert 'CoOp: average over 2 of 4 targets (missing: imagenet_sketch, ' \
        'imagenet_r)' in dg.note
    assert 'MaPLe:' not in dg.note


def test_records_without_protocol_and_explicit_filename(tmp_path):
    """Older records (no protocol) are read by their metrics; an explicit
    file name reads that file for every protocol."""
    from mmpl.evaluation.report import build_tables, find_results
    from mmpl.evaluation.results import record_protocol
    assert record_protocol({'metrics': _top1(eurosat=1.0)}) == 'fewshot'
    assert record_protocol({'metrics': _top1(imagenet=1.0,
                                             imagenetv2=1.0)}) == 'dg'
    assert record_protocol({'metrics': _top1(imagenet=1.0, dtd=1.0)}) == 'xd'
    _write(tmp_path, 'CoOp', 'eurosat', 1, 90.0, 50.0)
    (tmp_path / 'CoOp_eurosat_1' / 'test_results.json').write_text(
        (tmp_path / 'CoOp_eurosat_1' / 'results.json').read_text())
    # default: b2n from results.json only (the re-test is not counted twice)
    assert build_tables(find_results([str(tmp_path)]))['b2n'].row(
        'CoOp', 'eurosat').seeds == [1]
    tables = build_tables(find_results([str(tmp_path)], 'test_results.json'))
    assert tables['b2n'].row('CoOp', 'average').hm == pytest.approx(
        2 * 90 * 50 / 140)


def test_unknown_protocol_is_an_error(tmp_path):
    from mmpl.evaluation.report import build_tables, find_results
    _record(tmp_path, 'x', 'CoOp', 1, 'zeroshot', _top1(dtd=1.0))
    with pytest.raises(ValueError, match="unknown protocol 'zeroshot'"):
        build_tables(find_results([str(tmp_path)]))


@pytest.mark.parametrize('protocol', ['fewshot', 'xd'])
def test_report_tool_writes_each_protocol(tmp_path, protocol):
    """tools/analysis_tools/report.py: Markdown, CSV (with std columns)
    and a PNG per protocol found."""
    name = 'test_results.json' if protocol == 'xd' else 'results.json'
    for seed, acc in ((1, 60.0), (2, 70.0)):
        _record(tmp_path, f'r{seed}', 'CoOp', seed, protocol,
                _top1(imagenet=acc, dtd=acc - 10) if protocol == 'xd' else
                _top1(dtd=acc), 4, filename=name)
    out = tmp_path / 'report'
    tool = load_tool('tools/analysis_tools/report.py')
    assert tool.main([str(tmp_path), '--out-dir', str(out)]) == 0
    with open(out / f'{protocol}_table.csv') as f:
        rows = {r['dataset']: r for r in csv.DictReader(f)}
    key = 'shots4' if protocol == 'fewshot' else 'top1'
    dtd_mean = 65.0 if protocol == 'fewshot' else 55.0
    assert float(rows['dtd'][key]) == dtd_mean
    assert float(rows['dtd'][f'{key}_std']) == pytest.approx(7.0711,
                                                             abs=1e-4)
    assert float(rows['average'][key]) == dtd_mean
    assert (out / f'{protocol}_plot.png').read_bytes()[:4] == b'\x89PNG'
    assert (out / f'{protocol}_table.md').read_text().startswith(
        '| method | dataset |')
