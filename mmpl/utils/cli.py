"""The command line every tool shares: one-line argument errors and the
options of ``tools/train.py`` / ``tools/test.py`` (a leaf: imports only
:mod:`mmpl.utils` and mmengine).

    parser = run_parser('Train a prompt learner', 'train config file path')
    parser.add_argument('--resume', ...)
    args = parse_run_args(parser, argv)
"""
import argparse
import os
from typing import Optional, Sequence

from mmengine.config import DictAction

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


class ArgumentParser(argparse.ArgumentParser):
    """argparse with mmpl's error format: ``mmpl: error: <what>. Run
    <tool> --help for the options.`` on one line, exit status 2 (argparse
    prints the usage block first)."""

    def error(self, message: str):
        self.exit(2, f'mmpl: error: {message}. Run {self.prog} --help for '
                  'the options.\n')


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` (``KEY=VALUE``, ``KEY=a,b``, ``KEY=[..]``)
    that refuses an item without ``=`` in one line and keeps the spaces of
    a plain string value: ``model.text_prompt.ctx_init="a photo of a"``
    arrives as ``'a photo of a'`` (mmengine drops every space)."""

    @staticmethod
    def _parse_iterable(val: str):
        text = val.strip().strip('\'"')
        if ' ' in text and ',' not in text and text[:1] not in '[(':
            return text
        return DictAction._parse_iterable(val)

    def __call__(self, parser, namespace, values, option_string=None):
        for kv in values or ():
            key = kv.split('=', 1)[0]
            if '=' not in kv or not key:
                parser.error(f'{option_string} takes KEY=VALUE items '
                             f'(e.g. train_cfg.max_epochs=5), got {kv!r}')
        super().__call__(parser, namespace, values, option_string)


def add_cfg_options(parser: argparse.ArgumentParser,
                    help: Optional[str] = None) -> None:
    """The ``--cfg-options KEY=VALUE ...`` option."""
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction, metavar='K=V',
        help=help or 'override config keys, e.g. train_cfg.max_epochs=5 '
        'model.clip.pretrained=PATH (a string with spaces in quotes: '
        'model.text_prompt.ctx_init="a photo of a")')


def run_parser(description: str, config_help: str) -> ArgumentParser:
    """The options shared by ``tools/train.py`` and ``tools/test.py``:
    config, ``--work-dir``, ``--data-root``, ``--cfg-options``,
    ``--launcher``, ``--local-rank``. Tools add their own after it (the
    positional ones first)."""
    parser = ArgumentParser(description=description)
    parser.add_argument('config', help=config_help)
    return parser


def add_run_options(parser: argparse.ArgumentParser,
                    work_dir_help: str = 'where logs and checkpoints go'
                    ) -> None:
    """``--work-dir``, ``--data-root``, ``--cfg-options``,
    ``--no-persistent-workers``, ``--launcher``, ``--local-rank`` and
    ``--check-only`` (after the tool's positional arguments)."""
    parser.add_argument('--work-dir', help=work_dir_help)
    parser.add_argument('--data-root',
                        help='dataset folder for every dataset of the config')
    add_cfg_options(parser)
    parser.add_argument(
        '--no-persistent-workers', action='store_true',
        help="set every dataloader's persistent_workers to False "
        '(mmpretrain\'s option: the workers restart each epoch)')
    parser.add_argument('--launcher', default='none', choices=LAUNCHERS)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument(
        '--check-only', action='store_true',
        help='check the config, data, checkpoints and outputs, then stop '
        'before the runner is built (tools/dist_*.sh run this once before '
        'starting their processes)')


def run_config_kwargs(args) -> dict:
    """The arguments of :func:`mmpl.apis.load_config` that the options of
    :func:`add_run_options` give (all but the config and the seed)."""
    return dict(cfg_options=args.cfg_options, work_dir=args.work_dir,
                data_root=args.data_root, launcher=args.launcher,
                persistent_workers=False if args.no_persistent_workers
                else None)


def parse_run_args(parser: argparse.ArgumentParser,
                   argv: Optional[Sequence[str]] = None):
    """Parse ``argv``; sets ``LOCAL_RANK`` from ``--local-rank`` when the
    launcher did not (mmengine reads it)."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args
