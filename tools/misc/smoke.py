"""Run any config end to end offline, in seconds: a tiny random CLIP and
generated images written in each dataset's own on-disk layout.

    python tools/misc/smoke.py configs/coop/coop_vitb16_b2n_eurosat.py

Trains one short epoch (when the config trains), evaluates every split, and
prints the metrics as one JSON line. Use it to check a config before a long
GPU run; the test suite runs it on every config in configs/.
"""
import argparse
import json
import os.path as osp
import sys
import tempfile
import uuid

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmpl.testing.offline import make_offline  # noqa: F401 (tests use it)


class _SmokeConfig(Config):
    """A Config whose text is not run through yapf: the runner logs and
    dumps the config, which costs seconds per run and says nothing here."""

    @property
    def pretty_text(self) -> str:
        return '# smoke run\n' + repr(self._cfg_dict.to_dict())


def run_smoke(config: str, work_dir: str, cfg_options=None) -> dict:
    """Smoke-run ``config`` under ``work_dir``; returns the test metrics."""
    loaded = Config.fromfile(config)
    cfg = _SmokeConfig(loaded.to_dict(), filename=loaded.filename)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    # Unique per run: mmengine keys its logger/visualizer instances on it.
    cfg.experiment_name = f'smoke_{uuid.uuid4().hex[:12]}'
    cfg = make_offline(cfg, osp.join(work_dir, 'data'))
    runner = Runner.from_cfg(cfg)
    if cfg.get('train_dataloader') is not None:
        runner.train()
    return runner.test()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--work-dir',
                        help='default: a temporary folder, removed after')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    from mmpl.utils import is_user_error, user_error_message
    try:
        if args.work_dir:
            metrics = run_smoke(args.config, args.work_dir, args.cfg_options)
        else:
            with tempfile.TemporaryDirectory(prefix='mmpl-smoke-') as tmp:
                metrics = run_smoke(args.config, tmp, args.cfg_options)
    except Exception as exc:
        if not is_user_error(exc):
            raise
        print(f'mmpl: error: {user_error_message(exc)}', file=sys.stderr)
        return 2
    print('smoke metrics: ' + json.dumps(metrics, sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
