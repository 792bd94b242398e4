"""The offline demo behind `make demo`: the embedded base-to-new benchmark.

Writes the generated colour x shape dataset (downstream rendering, CoOp
split layout), evaluates zero-shot CLIP and trains each method's real config
on its base classes with mmpl's pretrained tiny CLIP (mmpl-shapes-vit), on
CPU, then prints base / new / HM and writes the table (Markdown + CSV) and a
plot (PNG) to the work dir. Same runner, loops, datasets and classifier as a
GPU run on real data; only the CLIP, the data, the input size (64 px) and
the schedule are small (see mmpl/utils/embedded_benchmark.py).
"""
import argparse
import os.path as osp
import sys
import time

from mmengine.config import Config
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
ZERO_SHOT = 'CLIP zero-shot'
#: method label -> its real config (ViT-B/16 settings, rewritten below)
METHODS = {
    ZERO_SHOT: 'configs/coop/coop_vitb16_b2n_eurosat.py',
    'CoOp': 'configs/coop/coop_vitb16_b2n_eurosat.py',
    'CoCoOp': 'configs/cocoop/cocoop_vitb16_b2n_eurosat.py',
    'CTP+TFT': 'configs/tomm/ctp_tft_vitb16_b2n_eurosat.py',
    'MaPLe': 'configs/maple/maple_vitb16_b2n_eurosat.py',
    'DGPrompt': 'configs/dgprompt/dgprompt_vitb16_b2n_eurosat.py',
    'FTP+TVP': 'configs/mpl/ftp_tvp_vitb16_b2n_eurosat.py',
}
#: the demo's short schedule (the same for every trained method)
SCHEDULE = dict(max_epochs=30, batch_size=16, lr=0.01)


def build_runner(label: str, config: str, data_root: str, work_dir: str,
                 schedule: dict, seed: int = 1) -> Runner:
    """A runner for ``label`` on the embedded benchmark."""
    from mmpl.utils import set_runtime_seed
    from mmpl.benchmark.shapes import to_embedded_benchmark
    cfg = Config.fromfile(osp.join(ROOT, config))
    to_embedded_benchmark(cfg, data_root, **schedule)
    if label == ZERO_SHOT:
        cfg.model.text_prompt = dict(type='ZeroShotCLIP')
    cfg.method_name = label
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    cfg.default_hooks.logger.interval = 50
    cfg.default_hooks.checkpoint.save_last = True
    set_runtime_seed(cfg, seed)
    return Runner.from_cfg(cfg)


def run_methods(methods: dict, data_root: str, work_dir: str,
                schedule: dict = SCHEDULE, seed: int = 1) -> list:
    """Evaluate zero-shot / train + evaluate every method; returns the
    report rows (one results.json per method under ``work_dir``)."""
    from mmpl.evaluation.report import aggregate_b2n, find_results
    for label, config in methods.items():
        run_dir = osp.join(work_dir, label.replace(' ', '_').replace('+', '_'))
        runner = build_runner(label, config, data_root, run_dir, schedule,
                              seed)
        if label == ZERO_SHOT:
            runner.val_loop.run()  # nothing to learn: evaluate only
        else:
            runner.train()  # evaluates the last epoch (results.json)
    return aggregate_b2n(find_results([work_dir]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args(argv)

    from mmpl.benchmark.shapes import write_downstream_dataset
    from mmpl.evaluation.report import (build_tables, find_results,
                                        to_markdown, write_report)

    start = time.time()
    data_root = write_downstream_dataset(osp.join(args.work_dir, 'data',
                                                  'shapes'))
    runs = osp.join(args.work_dir, 'runs')
    run_methods(METHODS, data_root, runs)
    table = build_tables(find_results([runs]), ['b2n'])['b2n']
    paths = write_report(
        table, args.work_dir,
        title='embedded benchmark: tiny CLIP, generated shapes, 16 shots')
    print('\nmmpl demo: base-to-new on the embedded benchmark (mmpl-shapes-vit,'
          f' generated colour x shape images), {time.time() - start:.0f} s')
    print(to_markdown(table.averages()))
    print('\n'.join(f'wrote {p}' for p in paths.values()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
