"""Classify images with a trained prompt, against any class names.

    python tools/infer.py photos/ work_dirs/coop/epoch_50.pth \
        --classes "river,sea or lake,forest" --topk 2 --out results.json
    python tools/infer.py a.jpg b.jpg CKPT --classes-file names.txt --out r.csv

IMAGES are files or folders (searched recursively). Without --classes the
checkpoint's training classes are used. The checkpoint alone rebuilds the
model; --config (the training config) is needed only for checkpoints of
older mmpl versions. Prints one line per image; --out writes JSON or CSV
(never over an existing file). Unreadable images are skipped and listed at
the end.
"""
import csv
import json
import os
import os.path as osp
import sys

# (import mmpl filters mmcv-lite's warning about a CUDA op mmpl never uses)
from mmpl.utils.cli import ArgumentParser
from mmpl.utils.errors import ConfigError, MissingFileError, run_cli
from mmpl.utils.io import check_new_file


def parse_args(argv=None):
    parser = ArgumentParser(
        description='Classify images with a trained prompt')
    parser.add_argument('images', nargs='+',
                        help='image files or folders of images')
    parser.add_argument('checkpoint', help='checkpoint of tools/train.py')
    parser.add_argument('--config',
                        help='the training config (only for checkpoints '
                        'that do not carry the model settings)')
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
                        "checkpoint's (a local file offline)")
    return parser.parse_args(argv)


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
    if not osp.isfile(args.checkpoint):
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


def class_list(args):
    from mmpl.apis import read_class_names
    if args.classes_file:
        return read_class_names(args.classes_file)
    if args.classes is not None:
        names = [n.strip() for n in args.classes.split(',') if n.strip()]
        if not names:
            raise ConfigError('--classes is empty. Give names separated by '
                             'commas, e.g. --classes "cat,dog"')
        return names
    return None


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
    return run_cli(_infer, parse_args(argv))


def _infer(args) -> int:
    images = check_args(args)
    classes = class_list(args)
    from mmpl.apis import PromptInferencer
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
        meta = dict(checkpoint=os.path.abspath(args.checkpoint),
                    classes=inferencer.classes, topk=args.topk)
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
