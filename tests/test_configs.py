"""Every config in configs/ runs end to end offline (tools/misc/smoke.py):
a tiny random CLIP and generated data in each dataset's real layout.

The few-shot, cross-dataset (xd) and domain generalisation (dg) leaves
repeat one method base over shared dataset bases (whose readers the b2n
leaves already smoke), so `make test` smokes a representative subset of
them: one 16-shot leaf per family (each on another dataset) and each
family's xd or dg leaf, in turn (both share the method's ImageNet
training). The other leaves (the other 16-shot leaves and the 1/2/4/8-shot
variants, whose structure test_protocols.py checks by loading them) are
smoked with --run-slow:

    python -m pytest tests/test_configs.py --run-slow
"""
import glob
import os.path as osp
import re

import pytest

from mmpl.evaluation.protocols import BENCHMARK_DATASETS
from mmpl.testing import smoke

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True)
    if f'{osp.sep}_base_{osp.sep}' not in p)
FAMILIES = sorted({osp.basename(osp.dirname(p)) for p in CONFIGS
                   if '_fewshot' in p})
#: datasets of the default few-shot smokes, in turn (their miniatures have 4
#: classes; EuroSAT's 10 make a slower smoke and its b2n leaves run anyway)
FEWSHOT_TURNS = [d for d in BENCHMARK_DATASETS if d != 'eurosat']


def smoked_by_default(path: str) -> bool:
    """Every config except the protocol leaves outside the representative
    subset (see the module docstring)."""
    family = osp.basename(osp.dirname(path))
    transfer = re.search(r'_(xd|dg)_imagenet\.py$', path)
    if transfer:
        return (FAMILIES.index(family) % 2 == 0) == (transfer.group(1) == 'xd')
    match = re.search(r'_fewshot(\d+)_(\w+)\.py$', path)
    if match is None:
        return True
    shots, dataset = int(match.group(1)), match.group(2)
    if shots != 16:
        return False
    return dataset == FEWSHOT_TURNS[FAMILIES.index(family) + 1]


def test_configs_found():
    assert any(p.endswith('coop_vitb16_b2n_eurosat.py') for p in CONFIGS)
    assert any(p.endswith('cocoop_vitb16_b2n_eurosat.py') for p in CONFIGS)


def test_default_smoke_covers_every_family_and_protocol():
    default = [p for p in CONFIGS if smoked_by_default(p)]

    def families(pattern):
        return {osp.basename(osp.dirname(p)) for p in default
                if re.search(pattern, p)}

    assert families('_fewshot16_') == families('_(xd|dg)_') == set(FAMILIES)
    assert families('_xd_') and families('_dg_')
    datasets = {re.search(r'_fewshot16_(\w+)\.py$', p).group(1)
                for p in default if '_fewshot' in p}
    assert len(datasets) == len(FAMILIES)


@pytest.mark.parametrize('config', [
    c if smoked_by_default(c) else pytest.param(c, marks=pytest.mark.slow)
    for c in CONFIGS], ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_smoke(config, tmp_path):
    metrics = smoke(config, str(tmp_path))
    assert metrics, 'no metrics'
    for key, value in metrics.items():
        if key.endswith('accuracy/top1') or key == 'harmonic_mean':
            assert 0.0 <= value <= 100.0, (key, value)
    if 'base/accuracy/top1' in metrics:
        assert set(metrics) >= {'base/accuracy/top1', 'new/accuracy/top1',
                                'harmonic_mean'}
