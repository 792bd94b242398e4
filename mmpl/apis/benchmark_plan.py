"""The runs of a benchmark: configs x datasets x shots x seeds.

Used by ``tools/run_benchmark.py``. A plan is a list of :class:`Run`, each
one ``tools/train.py`` or ``tools/test.py`` call with its own work dir and
``--cfg-options``; nothing here runs anything.

Conventions (config names ``<method>_<arch>_<protocol>_<dataset>.py``):

* ``--datasets``: a base-to-new or few-shot config is run on another
  dataset through its sibling ``<method>_<arch>_<protocol>_<other>.py``.
* ``--shots K`` (few-shot configs): every ``FewShotDataset.num_shots`` = K
  and, when the config has ``fewshot_epochs`` (CoOp), its epochs for K; the
  run is named as the ``fewshot<K>`` leaf would be.
* Work dirs: ``<root>/<config name>/seed<N>``. Cross-dataset (xd) and
  domain generalisation (dg) configs train on ImageNet, then
  ``tools/test.py`` evaluates the targets: xd tests in its training dir, dg
  in its own dir, testing the xd sibling's model when the two configs train
  identically (the same ImageNet model serves both protocols).
"""
import copy
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from mmengine.config import Config

from ..evaluation.protocols import BENCHMARK_DATASETS
from ..utils.config_file import read_config
from ..utils.config_tools import data_root_options, num_shots_options
from ..utils.errors import ConfigError, MissingFileError

#: config keys that decide what a training run learns
TRAINING_KEYS = ('model', 'train_dataloader', 'optim_wrapper',
                 'param_scheduler', 'train_cfg', 'randomness')
TRANSFER_PROTOCOLS = ('xd', 'dg')


@dataclass
class Run:
    """One ``tools/train.py`` (``kind='train'``) or ``tools/test.py``
    (``kind='test'``) call.

    Attributes:
        done_file: the run is complete when this file exists
            (``results.json`` / ``test_results.json`` in ``work_dir``).
        checkpoint: test runs: the trained model (``train_dir``'s
            ``last_checkpoint`` when it exists, else this expected path).
    """
    kind: str
    config: str
    work_dir: str
    seed: int
    options: Dict[str, Any] = field(default_factory=dict)
    checkpoint: Optional[str] = None
    train_dir: Optional[str] = None

    @property
    def done_file(self) -> str:
        name = 'results.json' if self.kind == 'train' else 'test_results.json'
        return osp.join(self.work_dir, name)


def config_name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def dataset_of(name: str) -> Optional[str]:
    """The benchmark dataset a config name ends with (longest match)."""
    found = [d for d in BENCHMARK_DATASETS if name.endswith('_' + d)]
    return max(found, key=len) if found else None


def sibling_config(path: str, dataset: str) -> str:
    """The same method and protocol on ``dataset``: the config next to
    ``path`` whose name ends with ``_<dataset>``."""
    name = config_name(path)
    own = dataset_of(name)
    if own is None:
        raise ConfigError(f'cannot run {osp.basename(path)} on other datasets:'
                          ' its name does not end with _<dataset> (one of '
                          f'{", ".join(BENCHMARK_DATASETS)})')
    sibling = osp.join(osp.dirname(path),
                       f'{name[:-len(own)]}{dataset}{osp.splitext(path)[1]}')
    if not osp.isfile(sibling):
        raise MissingFileError(f'no config {sibling} for dataset {dataset!r}'
                               f' (next to {osp.basename(path)})')
    return sibling


def shots_name(name: str, shots: int) -> str:
    """Run name of a config with ``shots``: its ``fewshot<N>`` token set to
    ``fewshot<shots>`` (the name of that shot count's leaf config)."""
    renamed, count = re.subn(r'_fewshot\d+(?=_|$)', f'_fewshot{shots}', name)
    return renamed if count else f'{name}_{shots}shots'


def _merged(cfg: Config, options: Dict[str, Any]) -> Config:
    merged = copy.deepcopy(cfg)
    merged.merge_from_dict(options)
    return merged


def _training(cfg: Config) -> dict:
    return {k: cfg.to_dict().get(k) for k in TRAINING_KEYS}


class BenchmarkPlanner:
    """Turns configs x datasets x shots x seeds into :class:`Run` lists.

    Args:
        work_root: the folder of all work dirs.
        data_root: the folder holding every dataset folder (None: the
            configs' own ``data/<folder>`` paths).
        cfg_options: options for every run (they win over the planner's).
        rewrite: the last options of every run, from its config with the
            options before them merged (``tools/run_benchmark.py --smoke``:
            :func:`mmpl.testing.offline_options`, which runs it offline);
            ``None`` for real runs.
    """

    def __init__(self, work_root: str, data_root: Optional[str] = None,
                 cfg_options: Optional[Dict[str, Any]] = None,
                 rewrite: Optional[Callable[[Config], Dict[str, Any]]] = None
                 ):
        self.work_root = work_root
        self.data_root = data_root
        self.cfg_options = dict(cfg_options or {})
        self.rewrite = rewrite
        self._configs: Dict[str, Config] = {}

    def load(self, path: str) -> Config:
        if path not in self._configs:
            self._configs[path] = read_config(path)
        return self._configs[path]

    def protocol(self, path: str) -> Optional[str]:
        return self.load(path).get('protocol')

    def options(self, path: str, shots: Optional[int] = None
                ) -> Dict[str, Any]:
        """The ``--cfg-options`` of a run of ``path``: shots, data roots,
        the user's options, then :attr:`rewrite`'s."""
        cfg = self.load(path)
        options: Dict[str, Any] = {}
        if shots is not None:
            options.update(num_shots_options(cfg, shots))
        if self.data_root:
            options.update(data_root_options(cfg, self.data_root))
        options.update(self.cfg_options)
        if self.rewrite is not None:
            options.update(self.rewrite(_merged(cfg, options)))
        return options

    def _train_run(self, path: str, name: str, seed: int,
                   shots: Optional[int] = None) -> Run:
        return Run('train', path, osp.join(self.work_root, name,
                                           f'seed{seed}'), seed,
                   self.options(path, shots))

    def _training_config(self, path: str) -> str:
        """dg configs train as their xd sibling when the two configs train
        identically; every other config trains itself."""
        if self.protocol(path) != 'dg':
            return path
        xd = osp.join(osp.dirname(path),
                      config_name(path).replace('_dg_', '_xd_', 1) + '.py')
        if xd != path and osp.isfile(xd) and self.protocol(xd) == 'xd' and \
                _training(self.load(xd)) == _training(self.load(path)):
            return xd
        return path

    def runs_of(self, path: str, seeds: Sequence[int],
                shots: Optional[int] = None) -> List[Run]:
        """The runs of one config (one dataset) over ``seeds``."""
        name = config_name(path)
        if shots is not None:
            name = shots_name(name, shots)
        runs = []
        for seed in seeds:
            if self.protocol(path) not in TRANSFER_PROTOCOLS:
                runs.append(self._train_run(path, name, seed, shots))
                continue
            trainer = self._training_config(path)
            train = self._train_run(trainer, config_name(trainer), seed)
            epochs = _merged(self.load(trainer),
                             train.options).train_cfg.max_epochs
            test_dir = train.work_dir if trainer == path else osp.join(
                self.work_root, name, f'seed{seed}')
            test_options = dict(self.options(path), **{
                'randomness.seed': seed})
            runs += [train, Run('test', path, test_dir, seed, test_options,
                                osp.join(train.work_dir,
                                         f'epoch_{epochs}.pth'),
                                train.work_dir)]
        return runs

    def plan(self, configs: Sequence[str], seeds: Sequence[int],
             datasets: Optional[Sequence[str]] = None,
             shots: Optional[Sequence[int]] = None) -> List[Run]:
        """Every run of ``configs`` x ``datasets`` x ``shots`` x ``seeds``
        (a training shared by xd and dg listed once).

        ``datasets`` applies to base-to-new and few-shot configs (xd and dg
        configs have fixed datasets); ``shots`` to few-shot configs.
        """
        if shots and not any(self.protocol(c) == 'fewshot'
                             for c in configs):
            raise ConfigError('--shots selects the shots of few-shot configs '
                              '(protocol fewshot); none was given')
        if datasets and all(self.protocol(c) in TRANSFER_PROTOCOLS
                            for c in configs):
            raise ConfigError(
                '--datasets selects the datasets of base-to-new and few-shot '
                'configs; cross-dataset and domain-generalisation configs '
                'evaluate fixed target datasets. Drop --datasets (or give a '
                'b2n / fewshot config)')
        runs: List[Run] = []
        for config in configs:
            protocol = self.protocol(config)
            variants = [config]
            if datasets and protocol not in TRANSFER_PROTOCOLS:
                variants = [sibling_config(config, d) for d in datasets]
            shot_list = list(shots) if shots and protocol == 'fewshot' \
                else [None]
            for variant in variants:
                for k in shot_list:
                    runs += self.runs_of(variant, seeds, k)
        unique: Dict[tuple, Run] = {}
        for run in runs:
            unique.setdefault((run.kind, run.work_dir), run)
        return list(unique.values())
