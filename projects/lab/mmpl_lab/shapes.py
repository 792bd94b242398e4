"""Generated compositional images: coloured shapes with readable names.

The embedded benchmark of mmpl (no download, CPU): class = colour x shape
("red triangle"), rendered deterministically from a seed. Two renderings:

* ``pretrain``: clean — light background, one centred shape, mild jitter.
  Used by ``projects/lab/tools/pretrain_tiny_clip.py`` with captions such as
  "a photo of a red triangle.".
* ``downstream``: shifted — an orange colour cast on every object, slightly
  noisy background, gray clutter shapes, off-centre objects and colour
  jitter (``DOWNSTREAM_SHIFT``), so that zero-shot transfer is imperfect and
  prompt learning has something to adapt to.

Classes are ordered so that the first ceil(n/2) (the benchmark's base
classes) cover every colour and every shape, and the new classes are unseen
combinations of seen attributes. The downstream set is written in the CoOp
split layout (``images/<class>/<n>.png`` + ``split_shapes.json``), so the
real reader (``CoOpSplitDataset``) loads it.

Nothing here is part of any published protocol; it is mmpl's stand-in for
CLIP + the 11 datasets where those cannot be downloaded.

:func:`to_embedded_benchmark` rewrites any method config to run on it,
offline on CPU. A method's real config (e.g.
``configs/coop/coop_vitb16_b2n_eurosat.py``) keeps its prompt modules,
losses, optimizer and schedule shape; what cannot be downloaded is swapped:

* CLIP: ``mmpl-shapes-vit``, the tiny CLIP pretrained by
  ``projects/lab/tools/pretrain_tiny_clip.py`` on the ``pretrain``
  rendering and kept in the lab (:data:`mmpl_lab.clips.SHAPES_CLIP`);
* data: the ``downstream`` rendering, read by ``CoOpCustomDataset``;
* input size 64 px instead of 224, milder random crops, no dataloader
  workers, a short schedule.
"""
import json
import os
import os.path as osp
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from mmpl.utils.config_tools import (iter_dataset_cfgs, replace_clip,
                                     replace_readers, set_image_size,
                                     set_loader_options)
from mmpl.utils.errors import ConfigError, ExistingFileError
from .clips import SHAPES_CLIP

COLOURS: Dict[str, Tuple[int, int, int]] = {
    'red': (220, 40, 40),
    'green': (40, 170, 60),
    'blue': (40, 80, 220),
    'yellow': (235, 210, 40),
    'purple': (140, 50, 180),
    'orange': (245, 140, 30),
}
SHAPES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'cross', 'star')
#: the downstream shift: background level and pixel noise, object radius
#: (fraction of the image), colour scale and noise, gray clutter shapes, and
#: a colour cast (every object colour blended half-way toward orange): the
#: classes stay separable in the frozen features, but zero-shot text/image
#: alignment degrades, as on many real downstream datasets
DOWNSTREAM_SHIFT = dict(background=(200, 245), noise=8, radius=(0.18, 0.28),
                        colour_scale=(0.9, 1.05), colour_noise=10,
                        clutter=(0, 2), tint=((230, 150, 60), 0.5))
SPLIT_FILE = 'split_shapes.json'
IMAGE_DIR = 'images'
TEMPLATE = 'a photo of a {}.'


def class_names(colours: Sequence[str] = tuple(COLOURS),
                shapes: Sequence[str] = SHAPES) -> List[str]:
    """All colour x shape names, ordered so that the first half (base)
    covers every colour and every shape: combinations are enumerated along
    diagonals (colour i with shape (i + d) mod S for d = 0, 1, ...)."""
    names = []
    for d in range(len(shapes)):
        for i, colour in enumerate(colours):
            names.append(f'{colour} {shapes[(i + d) % len(shapes)]}')
    return names


def _polygon(shape: str, cx: float, cy: float, r: float,
             angle: float) -> List[Tuple[float, float]]:
    if shape == 'square':
        corners = [(np.pi / 4 + k * np.pi / 2) for k in range(4)]
        radius = [r * 1.25] * 4
    elif shape == 'triangle':
        corners = [(-np.pi / 2 + k * 2 * np.pi / 3) for k in range(3)]
        radius = [r * 1.3] * 3
    elif shape == 'star':
        corners = [(-np.pi / 2 + k * np.pi / 5) for k in range(10)]
        radius = [r * 1.3 if k % 2 == 0 else r * 0.55 for k in range(10)]
    elif shape == 'cross':
        w = 0.38
        pts = [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1),
               (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)]
        ca, sa = np.cos(angle), np.sin(angle)
        return [(cx + r * 1.15 * (x * ca - y * sa),
                 cy + r * 1.15 * (x * sa + y * ca)) for x, y in pts]
    else:
        raise ConfigError(f'unknown shape {shape!r}')
    return [(cx + rad * np.cos(a + angle), cy + rad * np.sin(a + angle))
            for a, rad in zip(corners, radius)]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float,
                r: float, angle: float, fill: Tuple[int, int, int]) -> None:
    if shape == 'circle':
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(_polygon(shape, cx, cy, r, angle), fill=fill)


def render(name: str, rng: np.random.Generator, size: int = 64,
           distribution: str = 'pretrain') -> Image.Image:
    """Render one image of class ``name`` ('<colour> <shape>')."""
    colour, shape = name.split(' ', 1)
    scale = 4  # supersampling for smooth edges
    big = size * scale
    base = np.array(COLOURS[colour], dtype=np.float64)
    if distribution == 'pretrain':
        bg = rng.uniform(215, 250, size=3)
        canvas = np.ones((big, big, 3)) * bg
        r = big * rng.uniform(0.22, 0.32)
        cx, cy = big / 2 + rng.uniform(-0.08, 0.08, size=2) * big
        fill = np.clip(base + rng.normal(0, 8, size=3), 0, 255)
        clutter = 0
    elif distribution == 'downstream':
        shift = DOWNSTREAM_SHIFT
        bg = rng.uniform(*shift['background'], size=3)
        noise = rng.normal(0, shift['noise'], size=(size // 4, size // 4, 3))
        noise = np.kron(noise, np.ones((4 * scale, 4 * scale, 1)))
        canvas = np.clip(bg + noise, 0, 255)
        r = big * rng.uniform(*shift['radius'])
        cx, cy = rng.uniform(0.3, 0.7, size=2) * big
        tint, amount = shift['tint']
        base = (1 - amount) * base + amount * np.asarray(tint, np.float64)
        fill = np.clip(base * rng.uniform(*shift['colour_scale']) +
                       rng.normal(0, shift['colour_noise'], size=3), 0, 255)
        clutter = int(rng.integers(*shift['clutter']))
    else:
        raise ConfigError(f'distribution must be pretrain or downstream, got '
                          f'{distribution!r}')
    img = Image.fromarray(canvas.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(clutter):  # gray distractors, never the class colour
        gray = int(rng.uniform(70, 190))
        _draw_shape(draw, SHAPES[int(rng.integers(len(SHAPES)))],
                    *(rng.uniform(0.1, 0.9, size=2) * big),
                    big * rng.uniform(0.06, 0.12), rng.uniform(0, 2 * np.pi),
                    (gray, gray, gray))
    # small rotation jitter: shapes stay recognisable templates for a tiny
    # ViT trained from scratch in minutes
    _draw_shape(draw, shape, cx, cy, r, rng.uniform(-0.25, 0.25),
                tuple(int(v) for v in fill))
    return img.resize((size, size), Image.BICUBIC)


def render_batch(names: Sequence[str], seed: int, size: int = 64,
                 distribution: str = 'pretrain') -> np.ndarray:
    """(N, size, size, 3) uint8 images for ``names``, deterministic in
    ``seed``."""
    rng = np.random.default_rng(seed)
    return np.stack([np.asarray(render(n, rng, size, distribution))
                     for n in names])


def render_pair(left: str, right: str, rng: np.random.Generator,
                size: int = 64, centres: Tuple[float, float] = (0.27, 0.73)
                ) -> Image.Image:
    """A two-object image: ``left`` ('<colour> <shape>') centred at
    x = ``centres[0]``, ``right`` at x = ``centres[1]`` (fractions of the
    width), both at mid height, on the clean ``pretrain`` background; each
    object has the radius the halves allow (0.17-0.2 of the image), so
    neither crosses into the other half. For tests of which image region a
    class attends to (CTP, TFT)."""
    scale = 4
    big = size * scale
    img = Image.fromarray((np.ones((big, big, 3)) *
                           rng.uniform(215, 250, size=3)).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for name, cx in zip((left, right), centres):
        colour, shape = name.split(' ', 1)
        fill = np.clip(np.array(COLOURS[colour], dtype=np.float64) +
                       rng.normal(0, 8, size=3), 0, 255)
        cy = big / 2 + rng.uniform(-0.05, 0.05) * big
        _draw_shape(draw, shape, cx * big, cy, big * rng.uniform(0.17, 0.2),
                    rng.uniform(-0.25, 0.25), tuple(int(v) for v in fill))
    return img.resize((size, size), Image.BICUBIC)


def write_downstream_dataset(data_root: str,
                             images_per_class: Tuple[int, int, int] = (
                                 16, 4, 20),
                             size: int = 64,
                             seed: int = 0) -> str:
    """Write the downstream rendering in the CoOp split layout.

    ``<data_root>/images/<colour_shape>/<split>_<n>.png`` and
    ``<data_root>/split_shapes.json``; labels follow :func:`class_names`.
    Refuses a non-empty folder without this writer's split file (never
    overwrites user data). Returns ``data_root``.
    """
    split_path = osp.join(data_root, SPLIT_FILE)
    if osp.isdir(data_root) and os.listdir(data_root) and \
            not osp.isfile(split_path):
        raise ExistingFileError(
            f'{data_root} is not empty and holds no {SPLIT_FILE}; refusing '
            'to write generated images into it')
    names = class_names()
    rng = np.random.default_rng(seed)
    split: Dict[str, list] = {}
    for split_name, count in zip(('train', 'val', 'test'), images_per_class):
        entries = []
        for label, name in enumerate(names):
            folder = name.replace(' ', '_')
            os.makedirs(osp.join(data_root, IMAGE_DIR, folder), exist_ok=True)
            for n in range(count):
                rel = f'{folder}/{split_name}_{n:03d}.png'
                render(name, rng, size, 'downstream').save(
                    osp.join(data_root, IMAGE_DIR, rel))
                entries.append([rel, label, name])
        split[split_name] = entries
    with open(split_path, 'w') as f:
        json.dump(split, f)
    return data_root


IMAGE_SIZE = 64
#: RandomResizedCrop area range: CLIP's 0.08-1 would often crop the small,
#: off-centre object out of a 64 px image
CROP_AREA = (0.5, 1.0)


def shapes_reader(data_root: str) -> dict:
    """Reader config of the downstream shapes dataset at ``data_root``."""
    return dict(type='CoOpCustomDataset', data_root=data_root,
                split_file=SPLIT_FILE, image_dir=IMAGE_DIR,
                template=TEMPLATE, slug='shapes')


def to_embedded_benchmark(cfg,
                          data_root: str,
                          max_epochs: Optional[int] = None,
                          batch_size: Optional[int] = None,
                          lr: Optional[float] = None,
                          reader: Callable[[str], dict] = None,
                          clip: Optional[dict] = None,
                          crop_area: Tuple[float, float] = CROP_AREA):
    """Rewrite a method config (in place) to run on the embedded benchmark.

    Args:
        cfg: a loaded mmengine Config of any mmpl method.
        data_root: folder written by ``write_downstream_dataset`` (or by
            :func:`mmpl_lab.tasks.write_task`, with its ``reader``).
        max_epochs, batch_size, lr: schedule overrides (None keeps the
            method's own value).
        reader: ``reader(data_root) -> dict``, the reader config of the
            data (default :func:`shapes_reader`).
        clip: the CLIP config (default ``SHAPES_CLIP``).
        crop_area: the area range of the training crops
            (``RandomResizedCrop.crop_ratio_range``).
    """
    reader = reader or shapes_reader
    replace_clip(cfg, clip or SHAPES_CLIP)
    replace_readers(cfg, lambda node: dict(
        reader(data_root), split=node.get('split'),
        pipeline=node.get('pipeline', []), serialize_data=False))
    set_image_size(cfg, IMAGE_SIZE)
    for node in iter_dataset_cfgs(cfg):
        if node.get('type') == 'RandomResizedCrop':
            node['crop_ratio_range'] = crop_area
    set_loader_options(cfg, num_workers=0)
    if batch_size is not None:
        cfg.train_dataloader.batch_size = batch_size
    if max_epochs is not None:
        cfg.train_cfg.max_epochs = max_epochs
    if lr is not None:
        cfg.optim_wrapper.optimizer.lr = lr
    return cfg


ZERO_SHOT = 'CLIP zero-shot'
#: method label -> its real config (ViT-B/16 settings, relative to the
#: repository root), rewritten by :func:`to_embedded_benchmark`
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


def embedded_config(label: str, config: str, data_root: str, work_dir: str,
                    schedule: dict = SCHEDULE, seed: int = 1):
    """The config of method ``label`` (its real ``config`` file) on the
    embedded benchmark at ``data_root``; ``ZERO_SHOT`` swaps the text
    prompt for ``ZeroShotCLIP``."""
    from mmpl.apis.run import load_config
    cfg = load_config(config, work_dir=work_dir, seed=seed)
    to_embedded_benchmark(cfg, data_root, **schedule)
    if label == ZERO_SHOT:
        cfg.model.text_prompt = dict(type='ZeroShotCLIP')
    cfg.method_name = label
    cfg.default_hooks.logger.interval = 50
    # the last epoch's checkpoint only (for tools/infer.py on the demo)
    cfg.default_hooks.checkpoint.update(interval=-1, save_last=True)
    return cfg


def run_methods(methods: dict, data_root: str, work_dir: str,
                schedule: dict = SCHEDULE, seed: int = 1,
                config_root: str = '.', log=print) -> list:
    """Evaluate zero-shot / train + evaluate every method of ``methods``
    (label -> config path under ``config_root``); returns the report rows
    (one results.json per method under ``work_dir``). ``log`` gets one line
    per method (its base / new accuracy and time); the runners' logs are in
    each run's folder, warnings on the console."""
    from mmpl.apis.launch import FileLogRunner
    from mmpl.evaluation.report import aggregate_b2n, find_results
    for i, (label, config) in enumerate(methods.items(), 1):
        start = time.time()
        run_dir = osp.join(work_dir, label.replace(' ', '_').replace('+', '_'))
        runner = FileLogRunner.from_cfg(embedded_config(
            label, osp.join(config_root, config), data_root, run_dir,
            schedule, seed))
        if label == ZERO_SHOT:
            runner.val_loop.run()  # nothing to learn: evaluate only
        else:
            runner.train()  # evaluates the last epoch (results.json)
        row = aggregate_b2n(find_results([run_dir]))[0]
        log(f'[{i}/{len(methods)}] {label:24s} base {row.base:6.2f}  new '
            f'{row.new:6.2f}  ({time.time() - start:.0f} s; log in '
            f'{run_dir})')
    return aggregate_b2n(find_results([work_dir]))
