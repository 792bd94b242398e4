"""Every config in configs/ runs end to end offline (tools/misc/smoke.py):
a tiny random CLIP and generated data in each dataset's real layout."""
import glob
import os.path as osp

import pytest
from helpers import load_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True)
    if f'{osp.sep}_base_{osp.sep}' not in p)



smoke = load_tool('tools/misc/smoke.py')


def test_configs_found():
    assert any(p.endswith('coop_vitb16_b2n_eurosat.py') for p in CONFIGS)
    assert any(p.endswith('cocoop_vitb16_b2n_eurosat.py') for p in CONFIGS)


@pytest.mark.parametrize('config', CONFIGS,
                         ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_smoke(config, tmp_path):
    metrics = smoke.run_smoke(config, str(tmp_path))
    assert metrics, 'no metrics'
    for key, value in metrics.items():
        if key.endswith('accuracy/top1') or key == 'harmonic_mean':
            assert 0.0 <= value <= 100.0, (key, value)
    if 'base/accuracy/top1' in metrics:
        assert set(metrics) >= {'base/accuracy/top1', 'new/accuracy/top1',
                                'harmonic_mean'}
