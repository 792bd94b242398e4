"""The recipe that pretrains mmpl's tiny CLIP on the caption world.

    python projects/lab/tools/pretrain_tiny_clip.py --out mmpl-world-vit.pt

A real open_clip model (``mmpl-world-vit``: ViT 64 px / patch 8, an 8x8
patch grid; width 64, 4+4 layers, the real BPE tokenizer) learns from
renderings of random scenes of :mod:`mmpl_lab.world` (one object,
copies of one object, or two objects; half clean, half in one of the
world's photographic styles, which the caption usually names) and random
true captions of them
(CLIP's symmetric contrastive objective over the batch). Captions name a
random subset of a scene's attributes, so a caption is often true of
several images of a batch; the loss counts every true pair as a positive
(multi-positive InfoNCE, :func:`world.caption_constraints`), so that "a red
star" is not taught to be unlike every other red star. A random-length
prefix of filler words goes in front of the caption, so that the token
positions where prompt methods put their context are trained.

Deterministic for a seed on a given machine and thread count.
"""
import math
import time
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import world
from .clips import WORLD_ARCH, register_arch

ARCH = WORLD_ARCH
#: filler words for random-length caption prefixes (CoOp puts 16 context
#: tokens before the class name, so positions up to ~30 must be trained)
FILLER = ('this', 'is', 'a', 'the', 'nice', 'small', 'big', 'simple', 'clear',
          'here', 'we', 'see', 'one', 'plain', 'flat', 'image', 'of', 'good')
MAX_PREFIX = 18
#: the logit scale the pretraining starts from and is clamped to: the value
#: real CLIP ends at (its clamp), so that prompt learners' cross-entropy
#: gradients have the size the papers' learning rates were set for
LOGIT_SCALE = 100.0
#: the per-dimension RMS the embeddings of the world's words are brought to
#: at the end of the recipe (:func:`match_text_scale`): the std CLIP
#: initialises its token embedding with and CoOp draws its random context
#: with, so that the papers' SGD learning rates move word-initialised
#: context as they do on real CLIP (docs/yardstick.md)
TEXT_EMBEDDING_RMS = 0.02


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) CLIP-normalised float."""
    from mmpl.constants import CLIP_MEAN, CLIP_STD
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(
        0, 3, 1, 2).float()  # 0-255, as CLIP_MEAN / CLIP_STD
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    return (x - mean) / std


def multi_positive_loss(logits: torch.Tensor,
                        positives: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE where several pairs may be true.

    Args:
        logits: (B images, B captions) scaled cosine similarities.
        positives: (B captions, B images) bool, caption i true of image j
            (the diagonal is always true).
    """
    pos = positives.t().float()  # (B images, B captions)
    i2t = -(F.log_softmax(logits, 1) * pos).sum(1) / pos.sum(1)
    t2i = -(F.log_softmax(logits.t(), 1) * pos.t()).sum(1) / pos.t().sum(1)
    return (i2t.mean() + t2i.mean()) / 2


def pretrain(steps: int = 6000, batch_size: int = 128,
             pool_size: int = 40000, lr: float = 2e-3, seed: int = 0,
             threads: int = 2, log_every: int = 250,
             evaluate: Optional[Callable] = None,
             arch: str = ARCH, log: Callable[[str], None] = print):
    """Train an ``arch`` CLIP from scratch; returns (model, history).

    ``evaluate(model) -> dict`` runs every ``log_every`` steps (its numbers
    are logged and kept in the history).
    """
    import open_clip

    from mmpl.clip import TextTower, VisionTower
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    model = open_clip.create_model(register_arch(arch), pretrained=None)
    with torch.no_grad():  # real CLIP's learned temperature (the clamp)
        model.logit_scale.fill_(math.log(LOGIT_SCALE))
    text_tower, vision_tower = TextTower(model), VisionTower(model.visual)
    tokenize = open_clip.get_tokenizer(arch)
    start = time.time()
    pool = world.scene_pool(pool_size, seed)
    images_all = to_tensor(pool.images)
    log(f'rendered {pool_size} scenes in {time.time() - start:.0f} s')
    rng = np.random.default_rng(seed + 2)

    decay = [p for n, p in model.named_parameters()
             if p.ndim >= 2 and 'embedding' not in n]
    rest = [p for n, p in model.named_parameters()
            if not (p.ndim >= 2 and 'embedding' not in n)]
    optimizer = torch.optim.AdamW([dict(params=decay, weight_decay=0.1),
                                   dict(params=rest, weight_decay=0.0)],
                                  lr=lr, betas=(0.9, 0.98), eps=1e-6)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 *
        (1 + math.cos(math.pi * min(s, steps) / steps)))
    history: List[dict] = []
    model.train()
    for step in range(steps):
        idx = rng.choice(pool_size, batch_size, replace=False)
        scenes = [pool.scenes[i] for i in idx]
        texts, said = zip(*(world.caption(s, rng) for s in scenes))
        texts = [_with_prefix(t, rng) for t in texts]
        positives = torch.from_numpy(world.caption_constraints(scenes, said))
        ids = tokenize(texts)
        eot = text_tower.eot_index(ids)
        # one call, cut after the batch's last EOT (exact: causal mask)
        text = F.normalize(text_tower.encode_batch(
            text_tower.embed_tokens(ids)[:, :int(eot.max()) + 1], eot),
            dim=-1)
        feats = F.normalize(vision_tower.encode(images_all[idx]), dim=-1)
        scale = model.logit_scale.exp().clamp(max=LOGIT_SCALE)
        logits = scale * feats @ text.t()
        loss = multi_positive_loss(logits, positives)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            record = dict(step=step + 1, loss=loss.item(),
                          seconds=time.time() - start)
            if evaluate is not None:
                model.eval()
                with torch.no_grad():
                    record.update(evaluate(model))
                model.train()
            history.append(record)
            log('  '.join(f'{k} {v:.4g}' if isinstance(v, float) else
                          f'{k} {v}' for k, v in record.items()))
    model.eval()
    factor = match_text_scale(model)
    log(f'text stream divided by {factor:.3g} (the same function): the '
        f"world's words at {TEXT_EMBEDDING_RMS} per dimension")
    return model, history


def world_token_ids() -> List[int]:
    """The BPE ids of the words the world's captions and the tasks' class
    names use (captions of 2000 random scenes, a fixed seed)."""
    import open_clip

    from .tasks import TASKS
    tokenize = open_clip.get_tokenizer(register_arch(ARCH))
    rng = np.random.default_rng(0)
    texts = [world.caption(world.random_scene(rng), rng)[0]
             for _ in range(2000)]
    texts += [name for task in TASKS.values() for name in task.classes]
    words = sorted({w for t in texts for w in t.replace('.', ' ').split()})
    special = {0, tokenize.sot_token_id, tokenize.eot_token_id}  # 0: pad
    return sorted({int(i) for row in tokenize(words) for i in row
                   if int(i) not in special})


def text_embedding_rms(model) -> float:
    """Per-dimension RMS of the token embeddings of the world's words."""
    rows = model.token_embedding.weight[world_token_ids()].float()
    return float(rows.pow(2).mean().sqrt())


def match_text_scale(model) -> float:
    """:func:`rescale_text_stream` so that the world's words end at
    :data:`TEXT_EMBEDDING_RMS` per dimension; returns the factor."""
    factor = text_embedding_rms(model) / TEXT_EMBEDDING_RMS
    rescale_text_stream(model, factor)
    return factor


@torch.no_grad()
def rescale_text_stream(model, factor: float) -> None:
    """Divide the residual stream of ``model``'s text tower by ``factor``
    without changing its function: the token and positional embeddings and
    every block's residual-branch outputs (attention ``out_proj``, MLP
    ``c_proj``) are divided by it; LayerNorm (``ln_1``, ``ln_2``,
    ``ln_final``) undoes the scale (up to its eps).

    What changes is the scale prompt learners start from and step in:
    context vectors set to word embeddings are ``factor`` times smaller,
    their gradients ``factor`` times larger, so one SGD step moves them
    ``factor**2`` times further relative to their size. Real CLIP's token
    embeddings are initialised with std 0.02 per dimension, the scale of
    CoOp's random context; the v2 world CLIP's used tokens reached about
    0.08-0.12 (docs/yardstick.md, "why KgCoOp does not learn").
    """
    model.token_embedding.weight.div_(factor)
    model.positional_embedding.div_(factor)
    for block in model.transformer.resblocks:
        for proj in (block.attn.out_proj, block.mlp.c_proj):
            proj.weight.div_(factor)
            proj.bias.div_(factor)


def _with_prefix(text: str, rng: np.random.Generator) -> str:
    n = int(rng.integers(MAX_PREFIX + 1)) if rng.random() < 0.5 else 0
    words = [FILLER[int(i)] for i in rng.integers(len(FILLER), size=n)]
    return ' '.join(words + [text])


def task_zero_shot(per_class: int = 8, seed: int = 123
                   ) -> Callable[[torch.nn.Module], dict]:
    """``evaluate(model)`` for :func:`pretrain`: zero-shot top-1 on held-out
    renderings of every downstream task, base and new classes separately
    (keys ``<task>/base``, ``<task>/new``: the task's template), and the
    mean over tasks and splits with the template naming the task's style
    (``styled``) next to the plain one's (``plain``): how much a prompt
    that knew the style would gain."""
    from .tasks import TASKS, sample_split
    data = {}
    for name, task in TASKS.items():
        images, labels = sample_split(task, per_class, seed)
        data[name] = (to_tensor(images), torch.from_numpy(labels), task)

    def evaluate(model) -> dict:
        out, styled = {}, []
        for name, (x, y, task) in data.items():
            n_base = -(-len(task.classes) // 2)
            feats = image_features(model, x)
            splits = ((y < n_base, task.classes[:n_base], 0),
                      (y >= n_base, task.classes[n_base:], n_base))
            for template, key in ((task.template, name),
                                  (task.styled_template(), None)):
                accs = tuple(top1(feats[keep], text_weights(
                    model, names, template), y[keep] - offset)
                    for keep, names, offset in splits)
                if key is None:
                    styled.extend(accs)
                else:
                    out[f'{name}/base'], out[f'{name}/new'] = accs
        out['plain'] = float(np.mean(list(out.values())))
        out['styled'] = float(np.mean(styled))
        return out
    return evaluate


@torch.no_grad()
def text_weights(model, names: Sequence[str],
                 template: str) -> torch.Tensor:
    """(C, D) normalised text features of ``template.format(name)``."""
    import open_clip
    tokenize = open_clip.get_tokenizer(register_arch(ARCH))
    return F.normalize(model.encode_text(tokenize(
        [template.format(n) for n in names])), dim=-1)


@torch.no_grad()
def image_features(model, images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) normalised images -> (N, D) normalised features."""
    return F.normalize(model.encode_image(images), dim=-1)


def top1(features: torch.Tensor, weights: torch.Tensor,
         labels: torch.Tensor) -> float:
    """Top-1 (%) of the classifier ``weights`` (C, D) on ``features``."""
    return ((features @ weights.t()).argmax(-1) == labels).float().mean(
    ).item() * 100
