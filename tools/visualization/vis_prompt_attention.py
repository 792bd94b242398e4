"""Draw where a prompt method looks in one image, per class.

    python tools/visualization/vis_prompt_attention.py CONFIG CHECKPOINT \
        IMAGE --classes "red circle,blue star" --out attention.png
    python tools/visualization/vis_prompt_attention.py CONFIG IMAGE \
        --classes "river,forest" --out clip.png     # no checkpoint

One row per map, one panel per class, each map upsampled over the image
the model saw (after the test pipeline's resize and crop):

* every method: the frozen CLIP's patch-text similarity of the class name
  (hand-crafted template) to the value-path patch features;
* CTP (TOMM): each class's attention over the frozen patches, the pooling
  its per-class prompt shift reads;
* TFT (TOMM): each class's re-pooling weights over the image pass's
  patches, the ones that tuned the class's image feature;
* TVP (mutual prompt learning): a row of bars with the classes it kept
  and their weights (it weighs classes, not patches).

The maps are recorded during the model's own forward of the image
(mmpl.apis.attention). CONFIG gives the model and the test pipeline;
CHECKPOINT its trained prompts (omit it for the frozen CLIP's map and the
initial prompts). --classes defaults to the checkpoint's training classes
(panels for the --max-panels best scored).
"""
import os.path as osp
import sys

from mmpl.utils.cli import ArgumentParser, add_cfg_options
from mmpl.utils.errors import ConfigError, MissingFileError, run_cli


def parse_args(argv=None):
    parser = ArgumentParser(
        description='Draw where a prompt method looks in one image')
    parser.add_argument('config', help='the config of the model')
    parser.add_argument('checkpoint', nargs='?',
                        help='checkpoint of tools/train.py (omit: the '
                        'frozen CLIP and the initial prompts)')
    parser.add_argument('image', help='the image file')
    names = parser.add_mutually_exclusive_group()
    names.add_argument('--classes',
                       help='comma-separated class names, e.g. "cat,dog"')
    names.add_argument('--classes-file',
                       help='text file, one class name per line')
    parser.add_argument('--out', required=True,
                        help='the PNG to write (a new file)')
    parser.add_argument('--max-panels', type=int, default=8,
                        help='at most this many classes drawn, the best '
                        'scored [8]')
    parser.add_argument('--template',
                        help='hand-crafted template of the class anchors')
    parser.add_argument('--device', help='e.g. cpu, cuda:0 [cuda if any]')
    parser.add_argument('--pretrained',
                        help='CLIP weights to use instead of the config\'s '
                        '(a local file offline)')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def check_args(args) -> None:
    """Fail fast on bad input, before the model is built."""
    from mmpl.apis import PromptInferencer
    from mmpl.utils.io import check_new_file
    if not args.out.lower().endswith('.png'):
        raise ConfigError(f'--out {args.out!r} must end in .png. Give a '
                          'PNG file name')
    check_new_file(args.out, '--out')
    if args.max_panels < 1:
        raise ConfigError('--max-panels must be >= 1. Give a positive '
                          'number')
    for path, what in ((args.config, 'config'),
                       (args.checkpoint, 'checkpoint')):
        if path and not osp.isfile(path):
            raise MissingFileError(f'{what} not found: {path!r}. Give an '
                                   f'existing {what} file')
    if args.image.endswith(('.pth', '.pt')):
        raise ConfigError(f'{args.image!r} is a checkpoint, not an image. '
                          'Give CONFIG [CHECKPOINT] IMAGE in this order')
    images = PromptInferencer.expand_inputs(args.image)
    if len(images) != 1 or not osp.isfile(args.image):
        raise ConfigError(f'{args.image!r} is not an image file. Give one '
                          'image file (.jpg, .png, ...)')


def main(argv=None) -> int:
    return run_cli(_draw, parse_args(argv))


def _draw(args) -> int:
    check_args(args)
    from mmpl.apis import PromptInferencer, class_names_option
    from mmpl.apis.attention import plot_attention, prompt_attention
    from mmpl.utils.config_file import read_config
    classes = class_names_option(args.classes, args.classes_file)
    cfg = read_config(args.config)
    if args.cfg_options:
        from mmpl.apis.preflight import check_cfg_options
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    inferencer = PromptInferencer(
        args.checkpoint, config=cfg, classes=classes,
        template=args.template, device=args.device,
        pretrained=args.pretrained)
    try:
        maps = prompt_attention(inferencer, args.image)
    except (OSError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f'cannot read image {args.image!r} ({exc}). Give '
                          'a readable image file') from exc
    best = maps.scores.argsort(descending=True)[:args.max_panels].tolist()
    shown = [maps.classes[i] for i in sorted(best)]
    what = osp.basename(args.checkpoint) if args.checkpoint else \
        'no checkpoint'
    plot_attention(maps, args.out, shown,
                   title=f'{osp.basename(args.image)}: '
                   f'{inferencer.model.method_name} ({what})')
    for c in shown:
        i = maps.classes.index(c)
        print(f'{c}\tp={float(maps.scores[i]):.3f}')
    if maps.kept is not None:
        kept = [f'{maps.classes[i]} ({float(maps.class_weights[i]):.2f})'
                for i in maps.kept.nonzero()[:, 0].tolist()]
        print(f'TVP kept: {", ".join(kept)}')
    print(f'wrote {args.out} (maps: {", ".join(maps.maps)})',
          file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
