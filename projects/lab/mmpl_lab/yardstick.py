"""The yardstick: every method on the caption world's tasks, several seeds.

``projects/lab/tools/yardstick.py`` runs it; this module holds what it
runs and how it is summarised.

* **Methods** (:data:`METHODS`): each method's real config (its family's
  schedule: epochs, batch size, learning rate, context length), rewritten
  by one rule for the small world (:func:`run_config`): the tiny CLIP
  ``mmpl-world-vit`` (:data:`~mmpl_lab.clips.WORLD_CLIP`), the task's
  data, 64 px inputs, no dataloader workers, and deep prompts at the
  same share of the towers' layers (:func:`scale_prompt_depth`).
  Nothing else changes per method. Ablation variants change one module
  option of a method's config and nothing else.
* **Runs**: one per (task, method, seed) under
  ``<work_dir>/runs/<task>/<method>/seed<k>/``; a run whose
  ``results.json`` exists is not run again (the command resumes). The seed
  drives the few-shot sample and the training; zero-shot CLIP does not
  depend on it (run once per task, counted for every seed).
* **Headroom** (:func:`measure_headroom`, :mod:`.headroom`): per task,
  zero-shot vs the style-naming prompt vs a 16-shot linear probe vs the
  16 shots' class means (no text) on the base classes, measured once per
  work dir: whether the frozen features leave a prompt learner anything
  to find, and whether the features or the text limit it.
* **Records**: each finished run appends one line to
  ``<work_dir>/records.jsonl`` (method, task, seed, base, new, seconds);
  the statistics are computed from it, and a work dir holding a copy of
  it does not make those runs again (a run can go on on another machine).
* **Summary** (:func:`summarise`): a method's base / new are the mean
  over seeds of its task-averaged accuracies (± their std), its HM the
  harmonic mean of the two means. Comparisons of two methods (the
  published orderings :data:`ORDERINGS`, the ablations :data:`ABLATIONS`)
  are paired on (task, seed) units, with a two-sided 95 % t interval and
  the minimum detectable effect at 80 % power (:mod:`.paired`); an ablation
  is *significant* when its interval excludes 0, an ordering *holds* when
  its interval lies above 0 in the published direction.
"""
import csv
import json
import math
import os
import os.path as osp
import statistics
from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from mmpl.evaluation.harmonic_mean import harmonic_mean
from mmpl.evaluation.protocols import BASE_KEY, NEW_KEY
from mmpl.utils.errors import ConfigError
from mmpl.utils.io import adopt_outputs, check_outputs, mark_outputs
from . import paired
from . import tasks as world_tasks
from .clips import WORLD_CLIP, portable

#: training crops keep at least 90 % of the image: an object's size and
#: position are what some tasks' classes are (small vs big polygons) and the
#: objects are small and off-centre (the shapes benchmark's 50 % crops cost
#: CoOp 3 points of base accuracy: docs/yardstick.md, second measurement)
WORLD_CROP_AREA = (0.9, 1.0)
#: the layers of ViT-B/16's towers, which the papers' prompt depths count
VITB16_LAYERS = 12
ZERO_SHOT = 'CLIP zero-shot'
DEFAULT_TASKS = tuple(world_tasks.TASKS)
#: the first seed set (the world and the defaults are decided on it);
#: the confirmation set is 9-16 (docs/yardstick.md, "Replication")
DEFAULT_SEEDS = tuple(range(1, 9))


@dataclass(frozen=True)
class Method:
    """A method of the yardstick: its real config and the module options an
    ablation variant changes (mmengine ``--cfg-options`` keys)."""
    config: str
    options: Dict[str, object] = field(default_factory=dict)
    trained: bool = True


#: CoCoOp's schedule at batch 4: the lr scaled linearly (2e-3 x 4)
BATCH_4 = {'train_dataloader.batch_size': 4,
           'optim_wrapper.optimizer.lr': 8e-3}
METHODS: Dict[str, Method] = {
    ZERO_SHOT: Method('configs/coop/coop_vitb16_b2n_eurosat.py',
                      {'model.text_prompt': dict(type='ZeroShotCLIP',
                                                _delete_=True)},
                      trained=False),
    'CoOp': Method('configs/coop/coop_vitb16_b2n_eurosat.py'),
    'CoCoOp': Method('configs/cocoop/cocoop_vitb16_b2n_eurosat.py'),
    'KgCoOp': Method('configs/coop/kgcoop_vitb16_b2n_eurosat.py'),
    'MaPLe': Method('configs/maple/maple_vitb16_b2n_eurosat.py'),
    'CTP': Method('configs/tomm/ctp_tft_vitb16_b2n_eurosat.py',
                  {'model.feature_tuner': None, 'model.extra_losses': []}),
    'CTP+TFT': Method('configs/tomm/ctp_tft_vitb16_b2n_eurosat.py'),
    'CTP+TFT (text-free)': Method(
        'configs/tomm/ctp_tft_vitb16_b2n_eurosat.py',
        {'model.feature_tuner.query': 'image'}),
    'FTP': Method('configs/mpl/ftp_tvp_vitb16_b2n_eurosat.py',
                  {'model.visual_prompt': None}),
    'FTP+TVP': Method('configs/mpl/ftp_tvp_vitb16_b2n_eurosat.py'),
    'IVLP': Method('configs/dgprompt/dgprompt_vitb16_b2n_eurosat.py',
                   {'model.text_prompt.guidance': 'none',
                    'model.text_prompt.alpha': 0.0}),
    'DGPrompt': Method('configs/dgprompt/dgprompt_vitb16_b2n_eurosat.py'),
    # the symmetric alignment reading needs a batch of several images: its
    # ablation compares CTP+TFT with and without it at batch 4 (lr scaled)
    'CTP+TFT (batch 4)': Method(
        'configs/tomm/ctp_tft_vitb16_b2n_eurosat.py', BATCH_4),
    'CTP+TFT (alignment, batch 4)': Method(
        'configs/tomm/ctp_tft_vitb16_b2n_eurosat.py', dict(
            BATCH_4, **{'model.extra_losses': [dict(
                type='AlignmentLoss', image_to_text_weight=0.0,
                text_to_image_weight=1.0)]})),
    'DGPrompt (no retention)': Method(
        'configs/dgprompt/dgprompt_vitb16_b2n_eurosat.py',
        {'model.extra_losses': []}),
}
#: the published orderings of the baselines the yardstick must reproduce:
#: key -> (method, reference, measure, what the literature reports)
ORDERINGS: Dict[str, Tuple[str, str, str, str]] = {
    'a': ('CoOp', ZERO_SHOT, 'base', 'CoOp base > zero-shot base'),
    'b': (ZERO_SHOT, 'CoOp', 'new', 'CoOp new < zero-shot new'),
    'c': ('CoCoOp', 'CoOp', 'new', 'CoCoOp new > CoOp new'),
    'd': ('KgCoOp', 'CoOp', 'new', 'KgCoOp new > CoOp new'),
    'e': ('MaPLe', 'CoCoOp', 'hm', 'MaPLe HM > CoCoOp HM'),
    'f': ('KgCoOp', ZERO_SHOT, 'base', 'KgCoOp base > zero-shot base'),
    'g': ('MaPLe', 'CoCoOp', 'new', 'MaPLe new > CoCoOp new'),
}
#: the three papers' headline claims against the baseline each extends
#: (targets, not part of the gate): key -> as :data:`ORDERINGS`; a claim
#: in new and HM is two keys
CLAIMS: Dict[str, Tuple[str, str, str, str]] = {
    'h-new': ('CTP+TFT', 'CoCoOp', 'new', 'CTP+TFT new > CoCoOp new'),
    'h-hm': ('CTP+TFT', 'CoCoOp', 'hm', 'CTP+TFT HM > CoCoOp HM'),
    'i-new': ('FTP+TVP', 'CoCoOp', 'new', 'FTP+TVP new > CoCoOp new'),
    'i-hm': ('FTP+TVP', 'CoCoOp', 'hm', 'FTP+TVP HM > CoCoOp HM'),
    'j-hm': ('DGPrompt', 'MaPLe', 'hm', 'DGPrompt HM > MaPLe HM'),
}
#: what the papers report for each ordering and claim (ViT-B/16, 11-dataset
#: average of base-to-new; PROTOCOL.md), for the reports
PUBLISHED: Dict[str, str] = {
    'a': '82.69 vs 69.34', 'b': '63.22 vs 74.22', 'c': '71.69 vs 63.22',
    'd': '73.60 vs 63.22', 'e': '78.55 vs 75.83', 'f': '80.73 vs 69.34',
    'g': '75.14 vs 71.69', 'h-new': '75.72 vs 71.69',
    'h-hm': '79.02 vs 75.83', 'i-new': '76.48 vs 71.69',
    'i-hm': '79.71 vs 75.83', 'j-hm': '79.54 vs 78.55',
}
#: the ablations that isolate each paper's mechanism: name -> (method,
#: reference), compared on HM (significance) and also on base and new
ABLATIONS: Dict[str, Tuple[str, str]] = {
    'CTP vs CoCoOp': ('CTP', 'CoCoOp'),
    'TFT vs text-free TFT': ('CTP+TFT', 'CTP+TFT (text-free)'),
    'alignment loss vs none': ('CTP+TFT (alignment, batch 4)',
                               'CTP+TFT (batch 4)'),
    'FTP vs CoCoOp': ('FTP', 'CoCoOp'),
    'TVP vs none': ('FTP+TVP', 'FTP'),
    'DGPrompt vs IVLP': ('DGPrompt', 'IVLP'),
    'retention on vs off': ('DGPrompt', 'DGPrompt (no retention)'),
}


def check_names(methods: Iterable[str], tasks: Iterable[str]) -> None:
    for name in methods:
        if name not in METHODS:
            raise ConfigError(f'unknown yardstick method {name!r}; choose '
                              f'from {list(METHODS)}')
    for name in tasks:
        world_tasks.get_task(name)


def slug(method: str) -> str:
    """A folder name for a method label."""
    return ''.join(c if c.isalnum() else '_' for c in method).strip('_')


def run_dir(work_dir: str, task: str, method: str, seed: int) -> str:
    if not METHODS[method].trained:
        seed = 0  # zero-shot: one run per task
    return osp.join(work_dir, 'runs', task, slug(method), f'seed{seed}')


def task_reader(data_root: str) -> dict:
    """Reader config of a task written by :func:`tasks.write_task`."""
    return dict(type='CoOpCustomDataset', data_root=data_root,
                split_file=world_tasks.SPLIT_FILE,
                image_dir=world_tasks.IMAGE_DIR,
                template=world_tasks.TEMPLATE,
                slug=osp.basename(osp.normpath(data_root)))


@dataclass(frozen=True)
class QuickLook:
    """Departures from the protocol for a quick look or a smoke test (None:
    the protocol's value): test images per class, epochs of every method.
    Recorded in the summary."""
    test_per_class: Optional[int] = None
    max_epochs: Optional[int] = None

    def active(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


PROTOCOL = QuickLook()


def run_config(method: str, data_root: str, out_dir: str, seed: int,
               config_root: str = '.', clip: Optional[dict] = None,
               quick: QuickLook = PROTOCOL):
    """The config of one yardstick run (see the module doc)."""
    from mmpl.apis.run import load_config
    from .shapes import to_embedded_benchmark
    spec = METHODS[method]
    clip = clip or WORLD_CLIP
    cfg = load_config(osp.join(config_root, spec.config),
                      cfg_options=dict(spec.options), work_dir=out_dir,
                      seed=seed, quiet=True,
                      unique_name=f'{osp.basename(data_root)}_{slug(method)}'
                      f'_{seed}')
    to_embedded_benchmark(cfg, data_root, reader=task_reader,
                          clip=clip, max_epochs=quick.max_epochs,
                          crop_area=WORLD_CROP_AREA)
    scale_prompt_depth(cfg.model, clip_layers(clip['arch']))
    cfg.method_name = method
    # no dataloader workers: keep the process's start method (a spawned
    # worker of the yardstick), so mmengine does not warn that it changes it
    import multiprocessing
    cfg.env_cfg.mp_cfg.mp_start_method = multiprocessing.get_start_method()
    cfg.default_hooks.logger.interval = 50
    # the result is the last epoch's evaluation: no checkpoint to write
    cfg.default_hooks.checkpoint.update(interval=-1, save_last=False)
    return cfg


def scale_prompt_depth(model: dict, layers: int) -> None:
    """The depth rule: the ``depth`` J a config writes for a prompt module
    counts ViT-B/16's 12 layers; on a CLIP of ``layers`` layers it becomes
    round(J * layers / 12), at least 1, so that the same share of the
    towers carries prompts (MaPLe's and DGPrompt's 9 of 12 -> 3 of the
    world CLIP's 4; TVP's 1 stays 1)."""
    for key in ('text_prompt', 'visual_prompt'):
        prompt = model.get(key)
        if prompt and 'depth' in prompt:
            prompt['depth'] = max(1, round(prompt['depth'] * layers
                                           / VITB16_LAYERS))


def clip_layers(arch: str) -> int:
    """Layers of the shallower tower of open_clip architecture ``arch``
    (the text tower's for a ResNet image tower, whose layers are stages)."""
    import open_clip

    from mmpl.clip.builder import check_arch
    cfg = open_clip.get_model_config(check_arch(arch))  # a name or a file
    layers = [cfg['text_cfg']['layers'], cfg['vision_cfg']['layers']]
    return min(n for n in layers if isinstance(n, int))


def task_data(work_dir: str, task: str, quick: QuickLook = PROTOCOL) -> str:
    """Write (or find) ``task``'s data under ``<work_dir>/data``."""
    return world_tasks.write_task(world_tasks.get_task(task),
                                  osp.join(work_dir, 'data', task),
                                  test_per_class=quick.test_per_class)


def run_one(method: str, task: str, seed: int, work_dir: str,
            config_root: str = '.', clip: Optional[dict] = None,
            quick: QuickLook = PROTOCOL) -> str:
    """Run (train + evaluate, or evaluate for zero-shot) one run unless its
    ``results.json`` exists; returns that file."""
    from mmpl.apis.launch import FileLogRunner
    out = run_dir(work_dir, task, method, seed)
    result = osp.join(out, 'results.json')
    if osp.isfile(result):
        return result
    runner = FileLogRunner.from_cfg(run_config(
        method, task_data(work_dir, task, quick), out, seed, config_root,
        clip, quick))
    if METHODS[method].trained:
        runner.train()  # evaluates the last epoch (results.json)
    else:
        runner.val_loop.run()
    return result


SETTINGS_FILE = 'yardstick_settings.json'


def check_settings(work_dir: str, quick: QuickLook,
                   clip: Optional[dict]) -> None:
    """The first run of a work dir records its CLIP and quick-look
    settings; a later run with other settings would mix runs that are not
    comparable, and is refused."""
    settings = dict(quick=quick.active(), clip=portable(clip or WORLD_CLIP))
    path = osp.join(work_dir, SETTINGS_FILE)
    if osp.isfile(path):
        with open(path) as f:
            found = json.load(f)
        if found != json.loads(json.dumps(settings)):
            raise ConfigError(
                f'{work_dir} holds runs made with {found}, not {settings}; '
                'use another --work-dir to compare other settings')
        return
    os.makedirs(work_dir, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(settings, f)


def _run_job(job: tuple) -> Tuple[tuple, str, float]:
    """Worker entry: ``job`` = :func:`run_one`'s arguments; returns (job,
    results.json, seconds)."""
    import time
    start = time.time()
    path = run_one(*job)
    return job, path, time.time() - start


def _init_worker(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


def run_missing(work_dir: str, methods: Sequence[str], tasks: Sequence[str],
                seeds: Sequence[int], jobs: int = 2, config_root: str = '.',
                clip: Optional[dict] = None, quick: QuickLook = PROTOCOL,
                log=print) -> int:
    """Write the tasks' data, then run every (seed, task, method) without a
    ``results.json``, ``jobs`` at a time (one thread each), one ``log``
    line per finished run. Returns the number of runs made."""
    check_names(methods, tasks)
    check_settings(work_dir, quick, clip)
    for task in tasks:  # before the workers: one writer per task
        task_data(work_dir, task, quick)
    todo, seen = [], set(recorded(work_dir))
    for seed in seeds:
        for task in tasks:
            for method in methods:
                key = (method, task, _record_key(method, seed))
                out = run_dir(work_dir, task, method, seed)
                if key not in seen and not osp.isfile(
                        osp.join(out, 'results.json')):
                    seen.add(key)
                    todo.append((method, task, seed, work_dir, config_root,
                                 clip, quick))

    def report(done: int, job: tuple, path: str, seconds: float) -> None:
        method, task, seed = job[:3]
        with open(path) as f:
            metrics = json.load(f)['metrics']
        append_record(work_dir, Record(
            method, task, _record_key(method, seed),
            float(metrics[BASE_KEY]), float(metrics[NEW_KEY]),
            round(seconds, 1)))
        log(f'[{done:3d}/{len(todo)}] {task:9s} {method:24s} seed {seed}: '
            f'base {metrics[BASE_KEY]:5.1f}  new {metrics[NEW_KEY]:5.1f}  '
            f'({seconds:.0f} s)')

    if jobs == 1 or len(todo) < 2:
        for done, job in enumerate(todo, 1):
            report(done, *_run_job(job))
        return len(todo)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context('spawn'),
                             initializer=_init_worker,
                             initargs=(1, )) as pool:
        futures = [pool.submit(_run_job, job) for job in todo]
        for done, future in enumerate(as_completed(futures), 1):
            report(done, *future.result())
    return len(todo)


HEADROOM_FILE = 'headroom.json'


def measure_headroom(work_dir: str, tasks: Sequence[str],
                     clip: Optional[dict] = None,
                     quick: QuickLook = PROTOCOL,
                     log=print) -> Dict[str, Dict[str, float]]:
    """:func:`.headroom.task_headroom` of every task with the yardstick's
    CLIP, kept in ``<work_dir>/headroom.json`` (measured once)."""
    from .headroom import HEADROOM_KEYS, task_headroom
    for task in tasks:  # a work dir of other task data fails here, before
        task_data(work_dir, task, quick)  # its headroom.json is trusted
    found = _headroom_file(work_dir)
    # a task measured by an older version (fewer keys) is measured again
    missing = [t for t in tasks
               if set(HEADROOM_KEYS) - set(found.get(t, ()))]
    if missing:
        from mmpl.clip.builder import build_open_clip
        cfg = dict(clip or WORLD_CLIP)
        model = build_open_clip(cfg['arch'], cfg['pretrained'],
                                quick_gelu=cfg.get('quick_gelu'))
        per_class = min(60, quick.test_per_class or 60)
        for task in missing:
            found[task] = task_headroom(model, world_tasks.get_task(task),
                                        test_per_class=per_class)
            log(f'headroom {task:10s} ' + '  '.join(
                f'{k} {v:.4g}' for k, v in found[task].items()))
        os.makedirs(work_dir, exist_ok=True)
        with open(osp.join(work_dir, HEADROOM_FILE), 'w') as f:
            json.dump(found, f, indent=1)
    return {t: found[t] for t in tasks}


def _headroom_file(work_dir: str) -> Dict[str, Dict[str, float]]:
    """task -> headroom of ``<work_dir>/headroom.json`` ({} if absent)."""
    path = osp.join(work_dir, HEADROOM_FILE)
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def read_headroom(work_dir: str, tasks: Sequence[str]) -> dict:
    found = _headroom_file(work_dir)
    return {t: found[t] for t in tasks if t in found}


def summarise_runs(work_dir: str, methods: Sequence[str],
                   tasks: Sequence[str], seeds: Sequence[int],
                   quick: QuickLook = PROTOCOL
                   ) -> Tuple[dict, Dict[str, str]]:
    """Summarise the finished runs and write the outputs; returns the
    summary and kind -> path."""
    records = read_records(work_dir, methods, tasks, seeds)
    summary = summarise(records, methods, tasks)
    summary['seeds'] = list(seeds)
    summary['quick_look'] = quick.active()  # {} for the protocol
    summary['headroom'] = read_headroom(work_dir, tasks)
    title = (f'yardstick: mmpl-world-vit, {len(tasks)} tasks, seeds '
             f'{" ".join(map(str, seeds))}, 16 shots' +
             (f' (quick look: {quick.active()})' if quick.active() else ''))
    summary['title'] = title
    return summary, write_outputs(summary, records, work_dir, title)


# ------------------------------------------------------------ statistics
@dataclass(frozen=True)
class Record:
    """One run's accuracies (%) and, where known, its wall time (s)."""
    method: str
    task: str
    seed: int
    base: float
    new: float
    seconds: Optional[float] = None


#: one line per finished run (JSON), full precision: what the statistics
#: are computed from, small enough to commit, and what lets a run go on
#: elsewhere (copy it into a fresh work dir: its runs are not made again)
RECORDS_FILE = 'records.jsonl'


def append_record(work_dir: str, record: Record) -> None:
    with open(osp.join(work_dir, RECORDS_FILE), 'a') as f:
        f.write(json.dumps(record.__dict__) + '\n')


def recorded(work_dir: str) -> Dict[Tuple[str, str, int], Record]:
    """(method, task, seed) -> the record of ``<work_dir>/records.jsonl``
    (a later line of the same run wins)."""
    path = osp.join(work_dir, RECORDS_FILE)
    out: Dict[Tuple[str, str, int], Record] = {}
    if not osp.isfile(path):
        return out
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = Record(**json.loads(line))
            except (ValueError, TypeError) as e:
                raise ConfigError(
                    f'{path}:{number} is not a yardstick record ({e}). '
                    'Remove that line or the file') from None
            out[(r.method, r.task, r.seed)] = r
    return out


def _record_key(method: str, seed: int) -> int:
    return seed if METHODS[method].trained else 0


def read_records(work_dir: str, methods: Sequence[str], tasks: Sequence[str],
                 seeds: Sequence[int]) -> List[Record]:
    """The records of the finished runs, from ``records.jsonl`` or else
    the run's ``results.json``; zero-shot's one run per task is repeated
    for every seed, so that it pairs with every trained run."""
    found = recorded(work_dir)
    records = []
    for method in methods:
        for task in tasks:
            for seed in seeds:
                r = found.get((method, task, _record_key(method, seed)))
                if r is None:
                    path = osp.join(run_dir(work_dir, task, method, seed),
                                    'results.json')
                    if not osp.isfile(path):
                        continue
                    try:
                        with open(path) as f:
                            metrics = json.load(f)['metrics']
                        r = Record(method, task, seed,
                                   float(metrics[BASE_KEY]),
                                   float(metrics[NEW_KEY]))
                    except (ValueError, KeyError, TypeError) as e:
                        raise ConfigError(
                            f'{path} is not a finished run\'s results '
                            f'({type(e).__name__}: {e}). An interrupted run '
                            'may have left it: delete its folder and run '
                            'the yardstick again (it reruns it)') from None
                records.append(replace(r, seed=seed))
    return records


def _mean_std(values: Sequence[float]) -> List[float]:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return [statistics.fmean(values), std]


def units(records: Iterable[Record], method: str,
          tasks: Optional[Sequence[str]] = None) -> paired.Units:
    """(task, seed) -> (base, new) of ``method``: the units of
    :func:`.paired.paired_comparison`."""
    return {(r.task, r.seed): (r.base, r.new) for r in records
            if r.method == method and (tasks is None or r.task in tasks)}


def per_seed(records: Iterable[Record], method: str,
             tasks: Optional[Sequence[str]] = None
             ) -> Dict[int, Dict[str, float]]:
    """seed -> {'base', 'new', 'hm'}: base and new averaged over the tasks
    (only seeds with every task), hm of those two."""
    by_seed: Dict[int, Dict[str, Record]] = {}
    for r in records:
        if r.method == method and (tasks is None or r.task in tasks):
            by_seed.setdefault(r.seed, {})[r.task] = r
    want = set(tasks) if tasks is not None else {
        r.task for r in records if r.method == method}
    out = {}
    for seed, runs in sorted(by_seed.items()):
        if set(runs) != want:
            continue
        base = statistics.fmean(r.base for r in runs.values())
        new = statistics.fmean(r.new for r in runs.values())
        out[seed] = dict(base=base, new=new, hm=harmonic_mean(base, new))
    return out


def method_summary(seeds: Dict[int, Dict[str, float]]) -> Dict[str, list]:
    """{'base': [mean, std], 'new': [...], 'hm': [HM of the means, std of
    the seeds' HMs], 'seeds': n}."""
    base = [s['base'] for s in seeds.values()]
    new = [s['new'] for s in seeds.values()]
    hm = [s['hm'] for s in seeds.values()]
    out = dict(base=_mean_std(base), new=_mean_std(new), hm=_mean_std(hm))
    out['hm'][0] = harmonic_mean(out['base'][0], out['new'][0])
    out['seeds'] = len(seeds)
    return out


def compare(records: Sequence[Record], a: str, b: str, measure: str,
            tasks: Sequence[str]) -> dict:
    """:func:`.paired.paired_comparison` of ``a - b`` over every task, with
    the same comparison per task (``per_task``: its seeds only)."""
    ua, ub = units(records, a, tasks), units(records, b, tasks)
    out = paired.paired_comparison(ua, ub, measure)
    out['per_task'] = {}
    for task in tasks:
        d = paired.paired_comparison(units(records, a, [task]),
                                     units(records, b, [task]), measure)
        if d['n_pairs']:
            out['per_task'][task] = {k: d[k] for k in (
                'diff', 'ci', 'mde', 'n_pairs', 'significant')}
    return out


def summarise(records: Sequence[Record], methods: Sequence[str],
              tasks: Sequence[str]) -> dict:
    """The yardstick's ``summary.json`` (see the module doc)."""
    summary: dict = dict(tasks=list(tasks), methods={}, orderings={},
                         claims={}, ablations={}, per_task={})
    for m in methods:
        seeds = per_seed(records, m, tasks)
        if seeds:
            summary['methods'][m] = method_summary(seeds)
    for kind, table in (('orderings', ORDERINGS), ('claims', CLAIMS)):
        for key, (a, b, measure, claim) in table.items():
            if a in methods and b in methods:
                d = compare(records, a, b, measure, tasks)
                summary[kind][key] = dict(
                    d, claim=claim, method=a, reference=b, measure=measure,
                    holds=bool(d['ci'][0] > 0))
    for name, (a, b) in ABLATIONS.items():
        if a in methods and b in methods:
            parts = {m: paired.paired_comparison(
                units(records, a, tasks), units(records, b, tasks), m)
                for m in ('base', 'new')}
            summary['ablations'][name] = dict(
                compare(records, a, b, 'hm', tasks), method=a, reference=b,
                measure='hm', base=parts['base'], new=parts['new'])
    for task in tasks:
        runs = {m: per_seed(records, m, [task]) for m in methods}
        summary['per_task'][task] = {m: method_summary(r)
                                     for m, r in runs.items() if r}
    return summary


# ----------------------------------------------------------- replication
def _verdict(d: dict, ordering: bool) -> str:
    """'holds' / 'fails' for an ordering; '+', '-' or '0' for an ablation
    (the sign its interval shows, 0 when it includes 0)."""
    if ordering:
        return 'holds' if d['holds'] else 'fails'
    lo, hi = d['ci']
    return '+' if lo > 0 else ('-' if hi < 0 else '0')


def replication(first: dict, second: dict) -> dict:
    """Every ordering and ablation of two summaries on disjoint seed sets:
    kind -> name -> {'first', 'second': verdicts, 'agree': bool}. A verdict
    counts only where the two agree."""
    out: dict = dict(orderings={}, claims={}, ablations={})
    for kind, ordering in (('orderings', True), ('claims', True),
                           ('ablations', False)):
        for name in first.get(kind, {}):
            if name in second.get(kind, {}):
                a = _verdict(first[kind][name], ordering)
                b = _verdict(second[kind][name], ordering)
                out[kind][name] = dict(first=a, second=b, agree=a == b)
    return out


def replication_markdown(first: dict, second: dict) -> str:
    """The table of :func:`replication`, with both runs' intervals."""
    rep = replication(first, second)
    seeds = [' '.join(map(str, s.get('seeds', []))) for s in (first, second)]
    lines = [f'| comparison | seeds {seeds[0]}: diff [95 % CI] (MDE) | '
             f'seeds {seeds[1]}: diff [95 % CI] (MDE) | verdict |',
             '|---|---|---|---|']
    for kind in ('orderings', 'claims', 'ablations'):
        for name, r in rep[kind].items():
            a, b = first[kind][name], second[kind][name]
            label = (f'({name}) {a["claim"]} ({PUBLISHED.get(name, "?")})'
                     if kind != 'ablations' else f'{name} (HM)')
            verdict = r['first'] if r['agree'] else 'does not replicate'
            if kind == 'ablations' and r['agree']:
                verdict = {'+': 'positive in both', '-': 'negative in both',
                           '0': 'no effect detected in either'}[r['first']]
            lines.append(
                f'| {label} | {_interval(a)} ({a["mde"]:.2f}) | '
                f'{_interval(b)} ({b["mde"]:.2f}) | {verdict} |')
    return '\n'.join(lines)


# --------------------------------------------------------------- outputs
def _pm(cell: Sequence[float]) -> str:
    return f'{cell[0]:.2f} ± {cell[1]:.2f}'


def _interval(d: dict) -> str:
    """'+1.23 [+0.45, +2.01]' (diff and its 95 % interval)."""
    if math.isnan(d['ci'][0]):
        return f'{d["diff"]:+.2f} (no interval: a task has one seed)'
    return f'{d["diff"]:+.2f} [{d["ci"][0]:+.2f}, {d["ci"][1]:+.2f}]'


def _comparison_rows(comparisons: dict, verdict: str, label) -> List[str]:
    rows = []
    for key, d in comparisons.items():
        mde = '-' if math.isnan(d['mde']) else f'{d["mde"]:.2f}'
        rows.append(f'| {label(key, d)} | {_interval(d)} | {mde} | '
                    f'{d["n_pairs"]} | {"yes" if d[verdict] else "no"} |')
    return rows


def to_markdown(summary: dict) -> str:
    """The methods table, the orderings and the ablations (95 % intervals,
    minimum detectable effects), the per-task tables, the headroom."""
    lines = ['| method | base | new | HM | seeds |', '|---|---|---|---|---|']
    for m, s in summary['methods'].items():
        lines.append(f'| {m} | {_pm(s["base"])} | {_pm(s["new"])} | '
                     f'{_pm(s["hm"])} | {s["seeds"]} |')
    lines += ['', '(base / new / HM: mean ± std over seeds of the '
              'task-averaged accuracies; the HM of the means.)', '',
              '| ordering (published) | diff [95 % CI] | MDE (80 %) | '
              'pairs | holds (CI > 0) |', '|---|---|---|---|---|']
    lines += _comparison_rows(
        summary['orderings'], 'holds', lambda key, d:
        f'({key}) {d["claim"]} ({PUBLISHED.get(key, "?")})')
    if summary.get('claims'):
        lines += ['', "| the papers' claim (published) | diff [95 % CI] | "
                  'MDE (80 %) | pairs | holds (CI > 0) |',
                  '|---|---|---|---|---|']
        lines += _comparison_rows(
            summary['claims'], 'holds', lambda key, d:
            f'({key}) {d["claim"]} ({PUBLISHED.get(key, "?")})')
    lines += ['', '| ablation | base diff [95 % CI] | new diff [95 % CI] | '
              'HM diff [95 % CI] | HM MDE (80 %) | pairs | '
              'HM significant (CI excludes 0) |',
              '|---|---|---|---|---|---|---|']
    for name, d in summary['ablations'].items():
        mde = '-' if math.isnan(d['mde']) else f'{d["mde"]:.2f}'
        parts = [_interval(d[m]) if m in d else '-' for m in ('base', 'new')]
        lines.append(f'| {name} | {parts[0]} | {parts[1]} | {_interval(d)} '
                     f'| {mde} | {d["n_pairs"]} | '
                     f'{"yes" if d["significant"] else "no"} |')
    comparisons = [(f'({k}) {d["method"]} - {d["reference"]} '
                    f'{d["measure"]}', d)
                   for kind in ('orderings', 'claims')
                   for k, d in summary.get(kind, {}).items()]
    comparisons += [(f'{n} (HM)', d) for n, d in summary['ablations'].items()]
    tasks = summary['tasks']
    if comparisons:
        lines += ['', '| comparison, per task: diff [95 % CI] | ' +
                  ' | '.join(tasks) + ' |', '|---|' + '---|' * len(tasks)]
        for label, d in comparisons:
            cells = [_interval(d['per_task'][t]) if t in d['per_task']
                     else '-' for t in tasks]
            lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    lines += ['', '| method | ' + ' | '.join(
        f'{t} base / new' for t in tasks) + ' |',
        '|---|' + '---|' * len(tasks)]
    for m in summary['methods']:
        cells = []
        for t in tasks:
            s = summary['per_task'].get(t, {}).get(m)
            cells.append(f'{s["base"][0]:.1f} / {s["new"][0]:.1f}'
                         if s else '-')
        lines.append(f'| {m} | ' + ' | '.join(cells) + ' |')
    if summary.get('headroom'):
        lines += ['', '| headroom (base classes) | zero-shot | prompt '
                  'naming the style | 16-shot linear probe (best ridge) | '
                  '16-shot class means, no text | 4-token context, SGD '
                  '2e-3 |', '|---|---|---|---|---|---|']
        for t, h in summary['headroom'].items():
            # absent in the headroom.json of older versions
            means, ctx = h.get('prototypes'), h.get('context_sgd')
            lines.append(f'| {t} | {h["zero_shot"]:.1f} | '
                         f'{h["styled"]:.1f} | {h["probe"]:.1f} '
                         f'({h["probe_ridge"]:g}) | '
                         f'{"-" if means is None else f"{means:.1f}"} | '
                         f'{"-" if ctx is None else f"{ctx:.1f}"} |')
    return '\n'.join(lines)


def write_csv(records: Sequence[Record], path: str) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['method', 'task', 'seed', 'base', 'new', 'hm'])
        for r in records:
            writer.writerow([r.method, r.task, r.seed, f'{r.base:.2f}',
                             f'{r.new:.2f}',
                             f'{harmonic_mean(r.base, r.new):.2f}'])


def plot(summary: dict, path: str, title: str = '') -> None:
    """Left: grouped bars (base, new, HM) per method with std error bars.
    Right: every ordering and ablation, diff with its 95 % interval."""
    from mmpl.evaluation.plots import pyplot
    plt = pyplot()
    methods = list(summary['methods'])
    rows = [(f'({k}) {d["claim"]}', d)
            for kind in ('orderings', 'claims')
            for k, d in summary.get(kind, {}).items()]
    rows += [(f'{n} (HM)', d) for n, d in summary['ablations'].items()]
    bars_width = max(6, 0.9 * len(methods) + 2)
    fig, (ax, forest) = plt.subplots(
        1, 2, figsize=(bars_width + 6, 4.5),
        gridspec_kw=dict(width_ratios=[bars_width, 6]))
    width = 0.27
    for k, measure in enumerate(('base', 'new', 'hm')):
        xs = [i + (k - 1) * width for i in range(len(methods))]
        ax.bar(xs, [summary['methods'][m][measure][0] for m in methods],
               width, yerr=[summary['methods'][m][measure][1]
                            for m in methods],
               capsize=2, label=measure if measure != 'hm' else 'HM')
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels(methods, rotation=30, ha='right', fontsize=8)
    ax.set_ylabel('top-1 accuracy (%)')
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ys = list(range(len(rows)))[::-1]
    for y, (_, d) in zip(ys, rows):
        colour = {'+': 'tab:green', '-': 'tab:red',
                  '0': 'tab:gray'}[_verdict(d, ordering=False)]
        if not math.isnan(d['ci'][0]):
            forest.plot(d['ci'], [y, y], color=colour, lw=2)
        forest.plot([d['diff']], [y], 'o', color=colour, ms=4)
    forest.axvline(0, color='black', lw=0.8)
    forest.set_yticks(ys)
    forest.set_yticklabels([label for label, _ in rows], fontsize=7)
    forest.set_xlabel('difference, points (95 % CI)')
    forest.set_title('orderings (published direction) and ablations',
                     fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


#: what the yardstick writes into its work dir besides the runs
OUTPUT_FILES = ('yardstick.md', 'yardstick.csv', 'yardstick.png',
                'summary.json', 'replication.md')


def check_work_dir_outputs(work_dir: str) -> None:
    """Before any run: the work dir holds no file of the yardstick's names
    that the yardstick did not write (a work dir of an older version, with
    its settings file, counts as the yardstick's)."""
    adopt_outputs(work_dir, OUTPUT_FILES, SETTINGS_FILE)
    check_outputs(work_dir, OUTPUT_FILES, '--work-dir')


def write_outputs(summary: dict, records: Sequence[Record], out_dir: str,
                  title: str = '') -> Dict[str, str]:
    """yardstick.md, yardstick.csv, yardstick.png and summary.json in
    ``out_dir``; returns kind -> path."""
    check_outputs(out_dir, OUTPUT_FILES, '--work-dir')
    os.makedirs(out_dir, exist_ok=True)
    paths = dict(zip(('markdown', 'csv', 'png', 'json'),
                     (osp.join(out_dir, n) for n in OUTPUT_FILES[:4])))
    with open(paths['markdown'], 'w') as f:
        f.write((f'# {title}\n\n' if title else '') + to_markdown(summary) +
                '\n')
    write_csv(records, paths['csv'])
    plot(summary, paths['png'], title)
    with open(paths['json'], 'w') as f:
        json.dump(summary, f, indent=1, allow_nan=True)
    mark_outputs(out_dir, OUTPUT_FILES[:4])
    return paths
