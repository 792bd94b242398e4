"""Contrastive pretraining of mmpl's tiny CLIPs on generated images.

    python projects/lab/tools/pretrain_tiny_clip.py \
        --out projects/lab/mmpl_lab/clip/weights/mmpl-world-vit.pt
    python projects/lab/tools/pretrain_tiny_clip.py --recipe shapes \
        --out projects/lab/mmpl_lab/clip/weights/mmpl-shapes-vit.pt

``--recipe world`` (default): the yardstick's CLIP ``mmpl-world-vit`` on
the caption world, :mod:`mmpl_lab.pretrain` (the recipe and its
defaults are documented there). ``--recipe shapes``, below:

A real open_clip model (``mmpl-shapes-vit``: ViT 64 px / patch 16, width 64,
3+3 layers, the real BPE tokenizer) learns from clean renderings of
colour x shape images (``mmpl_lab.shapes``, distribution ``pretrain``)
paired with captions such as "a photo of a red triangle." (with a
random-length prefix of filler words, so that the positions where prompt
methods put their context tokens are trained too). Each step
contrasts a batch of images with the captions of all classes (CLIP's
image-to-text objective over a fixed caption set, plus the text-to-image
term over the batch). Deterministic for a seed on a given machine;
a few minutes on 2 CPU cores. The shipped weights were produced with the
defaults (see projects/lab/mmpl_lab/clip/weights/README.md).
"""
import argparse
import math
import os
import os.path as osp
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from mmpl_lab.clips import SHAPES_ARCH, register_arch

ARCH = SHAPES_ARCH
CAPTION_TEMPLATES = ('a photo of a {}.', 'a {}.', 'a picture of a {}.',
                     'an image of a {}.', 'a {} shape.', 'a drawing of a {}.')
#: filler words for random-length caption prefixes, so that text positions
#: up to ~26 are trained (CoOp puts 16 context tokens before the class name)
FILLER = ('this', 'is', 'a', 'the', 'nice', 'small', 'big', 'simple', 'clear',
          'here', 'we', 'see', 'one', 'plain', 'flat', 'image')
MAX_PREFIX = 18
CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) CLIP-normalised float."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    return (x - CLIP_MEAN) / CLIP_STD


def encode_token_ids(text_tower, ids: torch.Tensor) -> torch.Tensor:
    """(N, 77) token ids -> (N, D) text features, one call cut after the
    last EOT (exact: the causal mask)."""
    eot = text_tower.eot_index(ids)
    return text_tower.encode_batch(
        text_tower.embed_tokens(ids)[:, :int(eot.max()) + 1], eot)


def zero_shot_accuracy(text_tower, vision_tower, tokenize, names,
                       images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy (%) with the 'a photo of a {}.' prompt."""
    with torch.no_grad():
        text = F.normalize(encode_token_ids(text_tower, tokenize(
            [f'a photo of a {n}.' for n in names])), dim=-1)
        feats = F.normalize(vision_tower.encode(images), dim=-1)
        pred = (feats @ text.t()).argmax(-1)
    return (pred == labels).float().mean().item() * 100


def pretrain(steps: int = 2000, batch_size: int = 128,
             images_per_class: int = 160, lr: float = 2e-3,
             seed: int = 0, log_every: int = 100, threads: int = 2):
    """Train and return (model, log of (step, loss, zero-shot acc))."""
    import open_clip

    from mmpl.clip import TextTower, VisionTower
    from mmpl_lab.shapes import class_names, render_batch
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    model = open_clip.create_model(register_arch(ARCH), pretrained=None)
    # the towers on the trainable model (text cut after EOT, as mmpl runs it)
    text_tower, vision_tower = TextTower(model), VisionTower(model.visual)
    tokenize = open_clip.get_tokenizer(register_arch(ARCH))
    names = class_names()
    labels = np.repeat(np.arange(len(names)), images_per_class)
    pool = to_tensor(render_batch([names[i] for i in labels], seed=seed,
                                  distribution='pretrain'))
    labels = torch.from_numpy(labels)
    captions = [[t.format(n) for n in names] for t in CAPTION_TEMPLATES]
    # held-out check on the downstream rendering (zero-shot quality)
    check_labels = torch.arange(len(names)).repeat_interleave(10)
    check = to_tensor(render_batch([names[i] for i in check_labels],
                                   seed=seed + 1, distribution='downstream'))

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr,
                                  weight_decay=0.1)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 *
        (1 + math.cos(math.pi * min(s, steps) / steps)))
    gen = torch.Generator().manual_seed(seed)
    log = []
    model.train()
    for step in range(steps):
        idx = torch.randint(len(pool), (batch_size, ), generator=gen)
        images = pool[idx]
        flip = torch.rand(batch_size, generator=gen) < 0.5
        images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
        template = int(torch.randint(len(CAPTION_TEMPLATES), (1, ),
                                     generator=gen))
        n_prefix = int(torch.randint(MAX_PREFIX + 1, (1, ), generator=gen))
        words = torch.randint(len(FILLER), (n_prefix, ), generator=gen)
        prefix = ' '.join(FILLER[i] for i in words.tolist())
        ids = tokenize([f'{prefix} {c}'.strip() for c in captions[template]])
        text = F.normalize(encode_token_ids(text_tower, ids), dim=-1)
        feats = F.normalize(vision_tower.encode(images), dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        logits = scale * feats @ text.t()  # (B, C)
        target = labels[idx]
        # text-to-image within the batch: every image of the class is a
        # positive (multi-positive InfoNCE)
        positives = (target.view(1, -1) == torch.arange(
            len(names)).view(-1, 1)).float()  # (C, B)
        present = positives.sum(1) > 0
        t2i = -(F.log_softmax(logits.t()[present], dim=1) *
                positives[present]).sum(1) / positives[present].sum(1)
        loss = (F.cross_entropy(logits, target) + t2i.mean()) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            model.eval()
            acc = zero_shot_accuracy(text_tower, vision_tower, tokenize,
                                     names, check, check_labels)
            model.train()
            train_acc = (logits.argmax(-1) == target).float().mean() * 100
            log.append((step + 1, loss.item(), acc))
            print(f'step {step + 1:5d}  loss {loss.item():.4f}  batch acc '
                  f'{train_acc:5.1f}%  downstream zero-shot {acc:5.1f}%',
                  flush=True)
    model.eval()
    return model, log


#: the recipes' defaults: steps, batch size, pool (world: scenes; shapes:
#: images per class), learning rate
DEFAULTS = {'world': dict(steps=6000, batch_size=128, pool=40000, lr=2e-3),
            'shapes': dict(steps=2000, batch_size=128, pool=160, lr=2e-3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True,
                        help='output state dict (fp16); never overwritten')
    parser.add_argument('--recipe', choices=sorted(DEFAULTS), default='world',
                        help='world: mmpl-world-vit on the caption world '
                        '(mmpl_lab.pretrain, the yardstick\'s CLIP); '
                        'shapes: mmpl-shapes-vit on coloured shapes')
    parser.add_argument('--steps', type=int, default=None)
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument('--pool', type=int, default=None,
                        help='world: scenes rendered; shapes: images per '
                        'class')
    parser.add_argument('--lr', type=float, default=None)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args(argv)
    if osp.exists(args.out):
        print(f'mmpl: error: {args.out} exists; choose another --out',
              file=sys.stderr)
        return 2
    opts = {k: (getattr(args, k) if getattr(args, k) is not None else v)
            for k, v in DEFAULTS[args.recipe].items()}
    start = time.time()
    if args.recipe == 'world':
        from mmpl_lab import pretrain as world_recipe
        model, _ = world_recipe.pretrain(
            opts['steps'], opts['batch_size'], opts['pool'], opts['lr'],
            args.seed, threads=args.threads,
            evaluate=world_recipe.task_zero_shot())
    else:
        model, _ = pretrain(opts['steps'], opts['batch_size'], opts['pool'],
                            opts['lr'], args.seed, threads=args.threads)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save({k: v.half() for k, v in model.state_dict().items()},
               args.out)
    print(f'saved {args.out} ({osp.getsize(args.out) / 1e6:.1f} MB) in '
          f'{time.time() - start:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
