"""The base-to-new report tool against values computed by hand."""
import csv
import importlib.util
import json
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


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
    spec = importlib.util.spec_from_file_location(
        'b2n_report', osp.join(ROOT, 'tools/analysis_tools/b2n_report.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'report'
    assert tool.main([str(runs), '--out-dir', str(out)]) == 0
    md = (out / 'b2n_table.md').read_text()
    assert '| CoOp | eurosat | 85.00 ± 7.07 | 55.00 ± 7.07 | 66.79 |' in md
    assert '| CoOp | average | 77.50 | 47.50 | 58.90 |' in md
    with open(out / 'b2n_table.csv') as f:
        rows = list(csv.DictReader(f))
    assert rows[0]['method'] == 'CoCoOp' and float(rows[0]['hm']) == \
        pytest.approx(73.6667, abs=1e-3)
    assert (out / 'b2n_plot.png').read_bytes()[:4] == b'\x89PNG'


def test_duplicate_seed_is_an_error(runs):
    from mmpl.evaluation.report import aggregate_b2n, find_results
    dup = runs / 'again'
    dup.mkdir()
    (dup / 'results.json').write_text(
        (runs / 'CoOp_eurosat_1' / 'results.json').read_text())
    with pytest.raises(ValueError, match='two results for CoOp on eurosat'):
        aggregate_b2n(find_results([str(runs)]))
