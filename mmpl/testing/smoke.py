"""Run any config end to end offline (``tools/misc/smoke.py``)."""
import os.path as osp
from typing import Optional

from ..apis import preflight
from ..apis.launch import QuietRunner
from ..apis.run import load_config
from .offline import make_offline


def smoke(config: str, work_dir: str,
          cfg_options: Optional[dict] = None) -> dict:
    """Run ``config`` end to end offline under ``work_dir``: a tiny random
    CLIP, miniature data in each reader's layout, one short epoch (when
    the config trains), then every test split. Returns the test
    metrics."""
    preflight.check_work_dir(work_dir)  # its data goes there first
    cfg = load_config(config, cfg_options, work_dir=work_dir, quiet=True,
                      unique_name='smoke')
    cfg = make_offline(cfg, osp.join(work_dir, 'data'))
    runner = QuietRunner.from_cfg(cfg)  # one CPU process, any runner_type
    if cfg.get('train_dataloader') is not None:
        runner.train()
    return runner.test()
