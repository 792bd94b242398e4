"""List mmpl's method catalogue: one line per benchmark config (name,
paper, config, the paper's published HM), from the metafiles that
model-index.yml imports (what `mim search mmpl` reads).

    python tools/misc/list_models.py                  # every config
    python tools/misc/list_models.py 'ctp-tft*b2n'    # names matching
    python tools/misc/list_models.py --family mpl     # one config folder
    python tools/misc/list_models.py --methods        # one line per paper

The numbers are the papers' (EuroSAT base-to-new per config where
published; --methods: the 11-dataset averages), not measured by mmpl.
"""
import sys

from mmpl.utils.cli import ArgumentParser
from mmpl.utils.errors import ConfigError, run_cli

NOTE = ('published: the papers\' numbers (ViT-B/16, 16 shots), not measured '
        'by mmpl; mmpl publishes no trained weights')


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('pattern', nargs='?',
                        help='wildcard on the name\'s start, as mmpretrain\'s '
                        'list_models (e.g. "coop*eurosat")')
    parser.add_argument('--family',
                        help='only the configs of configs/FAMILY/ (e.g. tomm)')
    parser.add_argument('--methods', action='store_true',
                        help='one line per method: paper and the published '
                        '11-dataset base-to-new average')
    return parser.parse_args(argv)


def _number(value) -> str:
    return '-' if value is None else f'{value:.2f}'


def _table(header: tuple, rows: list) -> str:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(str(r[i])) for r in [header] + rows)
              for i in range(len(header))]
    return '\n'.join('  '.join(str(c).ljust(w) for c, w in zip(row, widths))
                     .rstrip() for row in [header] + rows)


def _models(args) -> str:
    from mmpl.apis import list_models
    models = list_models(args.pattern)
    if args.family is not None:
        families = {m.family for m in list_models()}
        if args.family not in families:
            raise ConfigError(f'no config family {args.family!r}; the '
                              f'families: {", ".join(sorted(families))}')
        models = [m for m in models if m.family == args.family]
    if not models:
        raise ConfigError(f'no model name matches {args.pattern!r}'
                          + (f' in {args.family}' if args.family else '')
                          + '; run tools/misc/list_models.py for them all')
    rows = [(m.name, f'{m.method} ({m.venue})', m.config,
             _number(m.hm) + (f' ({m.published_on})' if m.published_on
                              else '')) for m in models]
    return _table(('name', 'paper', 'config', 'published HM'), rows)


def _methods(args) -> str:
    from mmpl.apis import list_methods
    if args.family is not None:
        raise ConfigError('--family lists configs; use it without --methods')
    methods = list_methods(args.pattern)
    if not methods:
        raise ConfigError(f'no method name matches {args.pattern!r}; run '
                          'tools/misc/list_models.py --methods for them all')
    rows = [(m.name, m.venue, m.paper, _number(m.base), _number(m.new),
             _number(m.hm)) for m in methods]
    return _table(('method', 'venue', 'paper', 'base', 'new', 'HM'), rows)


def _list(args) -> int:
    print(_methods(args) if args.methods else _models(args))
    print(NOTE + ('; base / new / HM: average of the 11 datasets '
                  '(derived or approximate numbers: the Notes of '
                  'configs/*/metafile.yml)' if args.methods else ''))
    return 0


def main(argv=None) -> int:
    return run_cli(_list, parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
