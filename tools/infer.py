"""Classify images with a trained prompt, against any class names.

    python tools/infer.py photos/ work_dirs/coop/epoch_50.pth \
        --classes "river,sea or lake,forest" --topk 2 --out results.json
    python tools/infer.py a.jpg b.jpg CKPT --classes-file names.txt --out r.csv
    # zero-shot CLIP, no checkpoint: a CLIP, or the CLIP of a config
    python tools/infer.py photos/ --arch ViT-B-16 --pretrained openai \
        --classes "river,forest"
    python tools/infer.py photos/ --config CONFIG --classes "river,forest"

IMAGES are files or folders (searched recursively), then the checkpoint.
Without --classes the checkpoint's training classes are used. The
checkpoint alone rebuilds the model; --config (the training config) is
needed only for checkpoints of older mmpl versions. Without a checkpoint
(--arch and --pretrained, or --config, and no .pth after the images) the
images are classified zero-shot: the frozen CLIP and the hand-crafted
template (--template), with the config's test pipeline when a config is
given. Prints one line per image; --out writes JSON or CSV (never over an
existing file). Unreadable images are skipped and listed at the end.
"""
import csv
import json
import os.path as osp
import sys

# (import mmpl filters mmcv-lite's warning about a CUDA op mmpl never uses)
from mmpl.utils.cli import ArgumentParser
from mmpl.utils.errors import ConfigError, MissingFileError, run_cli
from mmpl.utils.io import check_new_file


def parse_args(argv=None):
    parser = ArgumentParser(
        description='Classify images with a trained prompt')
    parser.add_argument('inputs', nargs='+', metavar='IMAGES [CHECKPOINT]',
                        help='image files or folders of images, then the '
                        'checkpoint of tools/train.py (none for zero-shot '
                        'with --arch or --config)')
    parser.add_argument('--config',
                        help='the training config (only for checkpoints '
                        'that do not carry the model settings); without a '
                        'checkpoint: zero-shot with its CLIP and pipeline')
    parser.add_argument('--arch',
                        help='zero-shot without a checkpoint: the CLIP '
                        'architecture, e.g. ViT-B-16 (with --pretrained)')
    names = parser.add_mutually_exclusive_group()
    names.add_argument('--classes',
                       help='comma-separated class names, e.g. "cat,dog"')
    names.add_argument('--classes-file',
                       help='text file, one class name per line')
    parser.add_argument('--template',
                        help='hand-crafted template of the class anchors, '
                        'e.g. "a satellite photo of {}." (methods with '
                        'anchors; default: the training one)')
    parser.add_argument('--topk', type=int, default=5,
                        help='classes reported per image [5]')
    parser.add_argument('--out', help='write results to a .json or .csv file')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--device', help='e.g. cpu, cuda:0 [cuda if any]')
    parser.add_argument('--pretrained',
                        help='CLIP weights to use instead of the '
                        "checkpoint's (a local file offline; an open_clip "
                        'tag such as openai)')
    args = parser.parse_args(argv)
    split_inputs(args)
    return args


def split_inputs(args) -> None:
    """``args.images`` and ``args.checkpoint`` from the positional inputs:
    the last one is the checkpoint, except in zero-shot use (``--arch`` or
    ``--config``), where it is the checkpoint only when it ends in .pth."""
    *images, last = args.inputs
    zero_shot = bool(args.arch or args.config)
    if zero_shot and not last.lower().endswith(('.pth', '.pt')):
        images, last = args.inputs, None
    if not images:
        raise ConfigError(
            f'one input ({last!r}) and no checkpoint after it. Give IMAGES '
            'CHECKPOINT, or for zero-shot CLIP --arch ARCH --pretrained '
            'WEIGHTS or --config CONFIG')
    args.images, args.checkpoint = images, last


def check_args(args) -> list:
    """Fail fast on bad input, before the model is built; returns the
    images to classify."""
    from mmpl.apis import PromptInferencer
    if args.out:
        if osp.splitext(args.out)[1].lower() not in ('.json', '.csv'):
            raise ConfigError(f'--out {args.out!r} must end in .json or .csv. '
                             'Choose the output format by its suffix')
        check_new_file(args.out, '--out')
    if args.template is not None:
        from mmpl.clip.class_tokens import check_template
        check_template(args.template)
    if args.topk < 1 or args.batch_size < 1:
        raise ConfigError('--topk and --batch-size must be >= 1. Give '
                         'positive numbers')
    if args.arch and (args.checkpoint or args.config):
        raise ConfigError('--arch is for zero-shot CLIP without a checkpoint '
                          'or config. Drop --arch (the checkpoint or config '
                          'names its CLIP; --pretrained changes its weights)')
    if args.arch and not args.pretrained:
        raise ConfigError(f'--arch {args.arch} without weights would '
                          'classify with a random CLIP. Give --pretrained '
                          '(an open_clip tag such as openai, or a local '
                          'file)')
    if args.checkpoint is None and not (args.classes or args.classes_file):
        raise ConfigError('zero-shot CLIP has no class names of its own. '
                          'Give --classes "a,b,c" or --classes-file FILE')
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise MissingFileError(
            f'checkpoint not found: {args.checkpoint!r}. Give the .pth file '
            'written by tools/train.py')
    if args.config and not osp.isfile(args.config):
        raise MissingFileError(f'config not found: {args.config!r}. Give '
                                'the training config file')
    images = PromptInferencer.expand_inputs(args.images)
    if not images:
        raise MissingFileError(
            f'no images found in {", ".join(args.images)}. Give image files '
            '(.jpg, .png, ...) or folders holding them')
    return images


def write_results(path: str, results: list, skipped: list, meta: dict,
                  topk: int) -> None:
    # 'x': never replace a file created since the check
    with open(path, 'x', encoding='utf-8', newline='') as f:
        if path.lower().endswith('.json'):
            json.dump(dict(meta, results=results, skipped=skipped), f,
                      indent=2)
            return
        fields = ['image', 'pred_label', 'pred_class', 'pred_score']
        for i in range(1, topk + 1):
            fields += [f'top{i}_class', f'top{i}_score']
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in results:
            row = {k: r[k] for k in fields[:4]}
            for i, (c, s) in enumerate(zip(r['topk_classes'],
                                           r['topk_scores']), 1):
                row[f'top{i}_class'], row[f'top{i}_score'] = c, f'{s:.6f}'
            writer.writerow(row)


def main(argv=None) -> int:
    return run_cli(lambda: _infer(parse_args(argv)))


def _infer(args) -> int:
    images = check_args(args)
    from mmpl.apis import PromptInferencer, class_names_option
    classes = class_names_option(args.classes, args.classes_file)
    if args.checkpoint is None:
        inferencer = PromptInferencer.zero_shot(
            arch=args.arch, pretrained=args.pretrained, config=args.config,
            classes=classes, template=args.template, device=args.device)
    else:
        inferencer = PromptInferencer(
            args.checkpoint, config=args.config, classes=classes,
            template=args.template, device=args.device,
            pretrained=args.pretrained)
    folders = any(osp.isdir(p) for p in args.images)
    out = inferencer(images, topk=args.topk, batch_size=args.batch_size,
                     skip_errors=True, progress=folders)
    results = [r for r in out if 'error' not in r]
    skipped = [r for r in out if 'error' in r]
    if not results:  # nothing classified: an error, not an empty result
        raise ConfigError(
            f'none of the {len(skipped)} image(s) could be read (first: '
            f'{skipped[0]["image"]}, not a readable image). Give readable '
            'image files')
    for r in results:
        top = ', '.join(f'{c} ({s:.3f})' for c, s in zip(r['topk_classes'],
                                                        r['topk_scores']))
        print(f'{r["image"]}\t{top}')
    if args.out:
        meta = dict(checkpoint=args.checkpoint and osp.abspath(
            args.checkpoint), classes=inferencer.classes, topk=args.topk)
        if args.checkpoint is None:
            clip = inferencer.model.clip
            meta['zero_shot'] = dict(arch=clip.arch,
                                     pretrained=clip.pretrained,
                                     template=inferencer.model.anchor_template)
        write_results(args.out, results, skipped, meta, args.topk)
        print(f'wrote {len(results)} results to {args.out}', file=sys.stderr)
    if skipped:
        print(f'mmpl: skipped {len(skipped)} unreadable image'
              f'{"s" if len(skipped) > 1 else ""}:', file=sys.stderr)
        for r in skipped:
            print(f'  {r["image"]}: {r["error"]}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
