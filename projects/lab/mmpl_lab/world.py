"""The caption world of mmpl's yardstick: scenes, captions, renderings.

No real CLIP and no benchmark dataset can be loaded on the project's
machines, so mmpl pretrains its own tiny CLIP on a generated world and
measures the methods on generated downstream tasks
(:mod:`mmpl_lab.yardstick`). This module is that world:

* a **scene** is a background and one or more objects; an object has a
  shape, a colour, a pattern, a size and a position (:class:`Obj`);
* a **caption** names a random subset of a scene's attributes from
  templates ("a photo of two small red stars.", "a big striped hexagon on
  the left on grass.", "a blue circle and a yellow cross.");
  :func:`caption_constraints` tells which scenes a caption is true of, so
  the pretraining loss counts every true caption in a batch as a positive;
* :func:`render` draws a scene (64 px, 4x supersampled shapes, textured
  backgrounds, patterns inside the objects) in a :class:`Style`: clean, or
  one of the named photographic styles of :data:`STYLES` (blurry, dark,
  sepia, grainy, cluttered). Pretraining scenes come in every style and
  their captions usually name it ("a blurry photo of a red star."); each
  downstream task is rendered in one of them and prompted without it
  ("a photo of a red star."), as real CLIP is prompted with "a photo of"
  on satellite images or sketches.

The world is wide on purpose (12 shapes x 10 colours x 4 patterns x 2 sizes
x 5 positions x 5 backgrounds x 1-3 objects) so that the CLIP pretrained on
it transfers zero-shot to classes it never saw as downstream labels: every
downstream class name is a phrase of the caption language, and the
downstream tasks differ from pretraining by their class vocabulary and their
rendering (:data:`mmpl_lab.tasks.TASKS`).

Nothing here is part of a published protocol; it is mmpl's stand-in for
CLIP's pretraining data and the 11 datasets.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mmpl.utils.errors import ConfigError

COLOURS: Dict[str, Tuple[int, int, int]] = {
    'red': (215, 35, 35),
    'green': (40, 160, 60),
    'blue': (40, 80, 215),
    'yellow': (235, 205, 40),
    'purple': (135, 50, 175),
    'orange': (245, 135, 25),
    'pink': (240, 120, 180),
    'brown': (130, 80, 40),
    'cyan': (40, 200, 210),
    'gray': (125, 125, 125),
}
SHAPES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'pentagon',
                           'hexagon', 'octagon', 'star', 'cross', 'diamond',
                           'heart', 'ring', 'arrow')
PLURALS = {'cross': 'crosses'}
PATTERNS: Tuple[str, ...] = ('plain', 'striped', 'dotted', 'checkered')
SIZES: Dict[str, Tuple[float, float]] = {  # radius, fraction of the image
    'small': (0.11, 0.14), 'big': (0.22, 0.27)}
POSITIONS: Dict[str, Tuple[float, float]] = {
    'left': (0.28, 0.5), 'right': (0.72, 0.5), 'top': (0.5, 0.28),
    'bottom': (0.5, 0.72), 'middle': (0.5, 0.5)}
BACKGROUNDS: Tuple[str, ...] = ('white', 'dark', 'grass', 'sand', 'water')
COUNTS = {2: 'two', 3: 'three'}
#: the phrase of each background and position in captions
BACKGROUND_PHRASE = {'white': 'on a white background',
                     'dark': 'on a dark background', 'grass': 'on grass',
                     'sand': 'on sand', 'water': 'on water'}
POSITION_PHRASE = {p: f'on the {p}' if p != 'middle' else 'in the middle'
                   for p in POSITIONS}
#: attributes of an object, in caption order (size colour pattern shape)
ATTRIBUTES = ('size', 'colour', 'pattern', 'shape')
#: caption openings (the filler prefixes of the pretraining recipe come on
#: top, so that the positions of prompt methods' context tokens are trained)
OPENINGS = ('a photo of {}.', '{}.', 'a picture of {}.', 'an image of {}.',
            'a rendering of {}.', 'a drawing of {}.', 'there is {}.')
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Obj:
    """One object of a scene."""
    shape: str
    colour: str
    pattern: str = 'plain'
    size: str = 'big'
    position: str = 'middle'


@dataclass(frozen=True)
class Scene:
    """A background and its objects; ``count`` > 1 repeats ``objects[0]``
    (small, at random places) as in "two red stars"; ``style`` names the
    :data:`STYLES` entry it is rendered in."""
    objects: Tuple[Obj, ...]
    background: str = 'white'
    count: int = 1
    style: str = 'clean'


@dataclass(frozen=True)
class Style:
    """How a scene is rendered: the pretraining style (defaults) or one
    downstream dataset's appearance shift."""
    blur: float = 0.0  # Gaussian blur radius (px at 64 px)
    noise: float = 4.0  # pixel noise (std, 0-255 scale)
    tint: Optional[Tuple[int, int, int]] = None  # colour cast of the image
    tint_amount: float = 0.0
    contrast: float = 1.0  # scale around mid gray
    brightness: float = 0.0  # added (0-255 scale)
    jitter: float = 0.05  # position jitter (fraction of the image)
    rotation: float = 0.3  # max rotation of an object (radians)
    colour_noise: float = 8.0
    clutter: int = 0  # max number of small gray distractors


CLEAN = Style()
#: the photographic styles of the world: a pretraining scene is clean (half
#: of them) or in one of the others, and its caption names a non-clean style
#: with probability STYLE_NAMED ("a grainy photo of ..."); the downstream
#: tasks are each rendered in one of them (:mod:`mmpl_lab.tasks`)
STYLES: Dict[str, Style] = {
    'clean': CLEAN,
    'blurry': Style(blur=1.0, noise=6),
    'dark': Style(contrast=0.55, brightness=-40, tint=(60, 90, 170),
                  tint_amount=0.2, noise=6),
    'sepia': Style(tint=(190, 140, 80), tint_amount=0.45, noise=8),
    'grainy': Style(noise=24, colour_noise=14),
    'cluttered': Style(clutter=4, noise=6),
}
CLEAN_FRACTION = 0.5
STYLE_NAMED = 0.8


# ------------------------------------------------------------------ text
def _plural(shape: str) -> str:
    return PLURALS.get(shape, shape + 's')


def object_phrase(obj: Obj, mention: Sequence[str], count: int = 1) -> str:
    """'a big red striped star' (``mention``: the attributes named)."""
    words = []
    if 'size' in mention:
        words.append(obj.size)
    if 'colour' in mention:
        words.append(obj.colour)
    if 'pattern' in mention:
        words.append(obj.pattern)
    words.append(obj.shape if count == 1 else _plural(obj.shape))
    phrase = ' '.join(words)
    if count > 1:
        return f'{COUNTS[count]} {phrase}'
    return ('an ' if phrase[0] in 'aeiou' else 'a ') + phrase


def caption(scene: Scene, rng: np.random.Generator) -> Tuple[str, dict]:
    """A random true caption of ``scene`` and the constraints it states.

    Returns:
        the caption and a dict attribute -> value of what it names (for a
        single-object scene: any of size, colour, pattern, shape, position,
        background, count; two-object scenes: ``{'pair': ...}``), used by
        :func:`caption_constraints`.
    """
    opening = OPENINGS[int(rng.integers(len(OPENINGS)))]
    said: Dict[str, object] = {}
    if scene.style != 'clean' and rng.random() < STYLE_NAMED:
        opening = f'a {scene.style} photo of {{}}.'
        said['style'] = scene.style
    if len(scene.objects) == 2:
        a, b = scene.objects
        parts = []
        for obj in (a, b):
            mention = ['colour', 'shape'] + [
                k for k in ('size', 'pattern') if rng.random() < 0.25]
            p = object_phrase(obj, mention)
            if rng.random() < 0.5:
                p += ' ' + POSITION_PHRASE[obj.position]
            parts.append(p)
        if rng.random() < 0.5:
            parts.reverse()
        said['pair'] = frozenset((a.colour + ' ' + a.shape,
                                  b.colour + ' ' + b.shape))
        return opening.format(' and '.join(parts)), said
    obj = scene.objects[0]
    mention = ['shape'] + [k for k, p in (('colour', 0.75), ('pattern', 0.5),
                                          ('size', 0.35))
                           if rng.random() < p]
    if scene.count > 1:
        mention = [m for m in mention if m != 'size']
        said['count'] = scene.count
    elif rng.random() < 0.25:
        said['count'] = 1
    text = object_phrase(obj, mention, scene.count)
    if scene.count == 1 and 'count' in said:
        text = 'one ' + text.split(' ', 1)[1]
    for key in mention:
        said[key] = getattr(obj, key)
    if scene.count == 1 and rng.random() < 0.3:
        text += ' ' + POSITION_PHRASE[obj.position]
        said['position'] = obj.position
    if rng.random() < 0.35:
        text += ' ' + BACKGROUND_PHRASE[scene.background]
        said['background'] = scene.background
    if scene.count > 1 and opening.startswith('there is'):
        opening = 'there are' + opening[len('there is'):]
    return opening.format(text), said


def satisfies(scene: Scene, said: dict) -> bool:
    """Whether the caption whose constraints are ``said`` is true of
    ``scene``."""
    if 'style' in said and scene.style != said['style']:
        return False
    if 'pair' in said:
        return len(scene.objects) == 2 and said['pair'] == frozenset(
            o.colour + ' ' + o.shape for o in scene.objects)
    if len(scene.objects) != 1:
        return False
    obj = scene.objects[0]
    for key, value in said.items():
        if key == 'style':
            continue  # checked above
        if key == 'count':
            ok = scene.count == value
        elif key == 'background':
            ok = scene.background == value
        elif key == 'position':
            ok = scene.count == 1 and obj.position == value
        else:
            ok = getattr(obj, key) == value
        if not ok:
            return False
    return True


def caption_constraints(scenes: Sequence[Scene],
                        said: Sequence[dict]) -> np.ndarray:
    """(N captions, N scenes) bool: caption i is true of scene j."""
    return np.array([[satisfies(s, c) for s in scenes] for c in said])


# ---------------------------------------------------------------- scenes
def random_object(rng: np.random.Generator, size: Optional[str] = None,
                  position: Optional[str] = None) -> Obj:
    def pick(values):
        return values[int(rng.integers(len(values)))]
    return Obj(shape=pick(SHAPES), colour=pick(tuple(COLOURS)),
               pattern=pick(PATTERNS), size=size or pick(tuple(SIZES)),
               position=position or pick(tuple(POSITIONS)))


def random_style(rng: np.random.Generator) -> str:
    """Clean with probability CLEAN_FRACTION, else one of the other
    :data:`STYLES` uniformly."""
    if rng.random() < CLEAN_FRACTION:
        return 'clean'
    others = [k for k in STYLES if k != 'clean']
    return others[int(rng.integers(len(others)))]


def random_scene(rng: np.random.Generator) -> Scene:
    """A pretraining scene: one object (65 %), two or three copies of one
    small object (15 %), or two different objects side by side or one
    above the other (20 %), in a random style (:func:`random_style`)."""
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    style = random_style(rng)
    u = rng.random()
    if u < 0.65:
        return Scene((random_object(rng), ), background, style=style)
    if u < 0.8:
        return Scene((random_object(rng, size='small'), ), background,
                     count=int(rng.integers(2, 4)), style=style)
    where = ('left', 'right') if rng.random() < 0.5 else ('top', 'bottom')
    a = random_object(rng, 'small', where[0])
    while True:
        b = random_object(rng, 'small', where[1])
        if b.colour != a.colour and b.shape != a.shape:
            return Scene((a, b), background, style=style)


# ------------------------------------------------------------- rendering
def _polygon(shape: str, cx: float, cy: float, r: float,
             angle: float) -> List[Tuple[float, float]]:
    def regular(n, start, radius):
        return [(start + k * 2 * np.pi / n, radius) for k in range(n)]
    if shape == 'triangle':
        corners = regular(3, -np.pi / 2, r * 1.25)
    elif shape == 'square':
        corners = regular(4, np.pi / 4, r * 1.2)
    elif shape == 'diamond':
        corners = [(-np.pi / 2, r * 1.3), (0, r * 0.8), (np.pi / 2, r * 1.3),
                   (np.pi, r * 0.8)]
    elif shape in ('pentagon', 'hexagon', 'octagon'):
        n = {'pentagon': 5, 'hexagon': 6, 'octagon': 8}[shape]
        corners = regular(n, -np.pi / 2, r * 1.08)
    elif shape == 'star':
        corners = [(-np.pi / 2 + k * np.pi / 5, r * (1.3 if k % 2 == 0
                                                     else 0.55))
                   for k in range(10)]
    else:
        pts = {'cross': [(-.38, -1), (.38, -1), (.38, -.38), (1, -.38),
                         (1, .38), (.38, .38), (.38, 1), (-.38, 1),
                         (-.38, .38), (-1, .38), (-1, -.38), (-.38, -.38)],
               'arrow': [(-1, -.3), (.1, -.3), (.1, -.75), (1, 0), (.1, .75),
                         (.1, .3), (-1, .3)],
               'heart': [(0, 1), (-.95, .05), (-1, -.45), (-.75, -.85),
                         (-.35, -.9), (0, -.55), (.35, -.9), (.75, -.85),
                         (1, -.45), (.95, .05)]}[shape]
        ca, sa = np.cos(angle), np.sin(angle)
        return [(cx + r * 1.15 * (x * ca - y * sa),
                 cy + r * 1.15 * (x * sa + y * ca)) for x, y in pts]
    return [(cx + rad * np.cos(a + angle), cy + rad * np.sin(a + angle))
            for a, rad in corners]


def _shape_mask(shape: str, box: Tuple[int, int, int, int], cx: float,
                cy: float, r: float, angle: float) -> np.ndarray:
    """(h, w) float mask in [0, 1] of one object over ``box`` = (x0, y0,
    x1, y1) of the supersampled canvas; centre in canvas px."""
    x0, y0, x1, y1 = box
    cx, cy = cx - x0, cy - y0
    img = Image.new('L', (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(img)
    if shape in ('circle', 'ring'):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        if shape == 'ring':
            q = r * 0.55
            draw.ellipse([cx - q, cy - q, cx + q, cy + q], fill=0)
    elif shape in SHAPES:
        draw.polygon(_polygon(shape, cx, cy, r, angle), fill=255)
    else:
        raise ConfigError(f'unknown shape {shape!r}; choose from {SHAPES}')
    return np.asarray(img, np.float32) * (1 / 255)


def _pattern_field(pattern: str, box: Tuple[int, int, int, int], cx: float,
                   cy: float, r: float, angle: float) -> np.ndarray:
    """(h, w) in {0, 1} over ``box``: where a patterned object shows its
    colour (1) or its pale second tone (0)."""
    x0, y0, x1, y1 = box
    if pattern == 'plain':
        return np.ones((y1 - y0, x1 - x0), np.float32)
    y, x = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
    v = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
    period = max(r * 0.55, 3.0)
    if pattern == 'striped':
        return (np.mod(u, period) < period / 2).astype(np.float32)
    if pattern == 'checkered':
        return ((np.floor(u / period) + np.floor(v / period)) % 2 == 0
                ).astype(np.float32)
    if pattern == 'dotted':
        du = np.mod(u, period) - period / 2
        dv = np.mod(v, period) - period / 2
        return (du * du + dv * dv > (period * 0.3) ** 2).astype(np.float32)
    raise ConfigError(f'unknown pattern {pattern!r}; choose from {PATTERNS}')


def _box(big: int, cx: float, cy: float, r: float) -> Tuple[int, ...]:
    """The canvas box (x0, y0, x1, y1) that holds an object of radius r."""
    reach = 1.6 * r + 2
    return (max(0, int(cx - reach)), max(0, int(cy - reach)),
            min(big, int(cx + reach) + 1), min(big, int(cy + reach) + 1))


def _paint(canvas: np.ndarray, box, mask: np.ndarray, fill) -> None:
    """Alpha-composite ``fill`` ((h, w, 3) or (3,)) into ``canvas`` over
    ``box`` through ``mask`` (h, w), in place."""
    x0, y0, x1, y1 = box
    region = canvas[y0:y1, x0:x1]
    m = mask[..., None]
    region += m * (fill - region)


def _background(kind: str, size: int, rng: np.random.Generator,
                noise: float) -> np.ndarray:
    """(size, size, 3) float background at the output resolution."""
    def blobs(cells, amount):
        low = rng.normal(0, amount, size=(cells, cells, 1))
        return np.kron(low, np.ones((size // cells, size // cells, 1)))
    if kind == 'white':
        base = rng.uniform(215, 250, size=3) + np.zeros((size, size, 3))
    elif kind == 'dark':
        base = rng.uniform(25, 65, size=3) + np.zeros((size, size, 3))
    elif kind == 'grass':
        base = np.array([70, 140, 55]) + blobs(16, 14) + blobs(4, 10)
    elif kind == 'sand':
        base = np.array([220, 195, 140]) + blobs(32, 10)
    elif kind == 'water':
        y = np.arange(size).reshape(-1, 1, 1)
        phase = rng.uniform(0, 2 * np.pi)
        waves = 18 * np.sin(y * 2 * np.pi / 6 + phase + 0.8 *
                            np.sin(np.arange(size).reshape(1, -1, 1) / 5))
        base = np.array([45, 105, 195]) + waves + blobs(8, 6)
    else:
        raise ConfigError(f'unknown background {kind!r}; choose from '
                          f'{BACKGROUNDS}')
    return base + rng.normal(0, noise, size=(size, size, 3))


def _placements(scene: Scene, rng: np.random.Generator,
                style: Style) -> List[Tuple[Obj, float, float, float]]:
    """(object, cx, cy, r) per drawn object, fractions of the image."""
    if scene.count == 1:
        out = []
        for obj in scene.objects:
            cx, cy = POSITIONS[obj.position]
            cx, cy = (np.array([cx, cy]) +
                      rng.uniform(-style.jitter, style.jitter, size=2))
            out.append((obj, cx, cy, rng.uniform(*SIZES[obj.size])))
        return out
    # copies of one small object at random places, not overlapping
    obj, out = scene.objects[0], []
    while len(out) < scene.count:
        cx, cy = rng.uniform(0.18, 0.82, size=2)
        r = rng.uniform(*SIZES['small'])
        if all((cx - x) ** 2 + (cy - y) ** 2 > (r + q + 0.03) ** 2
               for _, x, y, q in out):
            out.append((obj, cx, cy, r))
    return out


def render(scene: Scene, rng: np.random.Generator, size: int = 64,
           style: Optional[Style] = None) -> Image.Image:
    """Draw ``scene`` as a ``size`` px RGB image in ``style`` (default: the
    scene's own, ``STYLES[scene.style]``)."""
    if style is None:
        style = STYLES[scene.style]
    big = size * SUPERSAMPLE
    canvas = _background(scene.background, size, rng, style.noise).astype(
        np.float32).repeat(SUPERSAMPLE, 0).repeat(SUPERSAMPLE, 1)
    for _ in range(int(rng.integers(style.clutter + 1))):
        gray = rng.uniform(70, 190)
        cx, cy = rng.uniform(0.1, 0.9, size=2) * big
        r = big * rng.uniform(0.05, 0.08)
        box = _box(big, cx, cy, r)
        _paint(canvas, box, _shape_mask(
            SHAPES[int(rng.integers(len(SHAPES)))], box, cx, cy, r,
            rng.uniform(0, 2 * np.pi)), np.float32(gray))
    for obj, cx, cy, r in _placements(scene, rng, style):
        angle = rng.uniform(-style.rotation, style.rotation)
        cx, cy, r = cx * big, cy * big, r * big
        box = _box(big, cx, cy, r)
        colour = np.clip(np.array(COLOURS[obj.colour], np.float32) +
                         rng.normal(0, style.colour_noise, size=3), 0, 255
                         ).astype(np.float32)
        pale = 0.35 * colour + 0.65 * 255
        tone = _pattern_field(obj.pattern, box, cx, cy, r,
                              rng.uniform(0, np.pi))[..., None]
        _paint(canvas, box, _shape_mask(obj.shape, box, cx, cy, r, angle),
               pale + tone * (colour - pale))
    small = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).resize(
        (size, size), Image.BOX)
    img = np.asarray(small, np.float32)
    if style.tint is not None:
        img = (1 - style.tint_amount) * img + style.tint_amount * np.asarray(
            style.tint, np.float32)
    img = (img - 128) * style.contrast + 128 + style.brightness
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if style.blur > 0:
        out = out.filter(ImageFilter.GaussianBlur(style.blur))
    return out


def render_batch(scenes: Sequence[Scene], seed: int, size: int = 64,
                 style: Optional[Style] = None) -> np.ndarray:
    """(N, size, size, 3) uint8, deterministic in ``seed`` (``style``
    default: each scene's own)."""
    rng = np.random.default_rng(seed)
    return np.stack([np.asarray(render(s, rng, size, style)) for s in scenes])


@dataclass
class ScenePool:
    """Pretraining scenes and their renderings (the recipe's data)."""
    scenes: List[Scene] = field(default_factory=list)
    images: Optional[np.ndarray] = None  # (N, H, W, 3) uint8


def scene_pool(num: int, seed: int, size: int = 64) -> ScenePool:
    """``num`` random pretraining scenes, each rendered in its style."""
    rng = np.random.default_rng(seed)
    scenes = [random_scene(rng) for _ in range(num)]
    return ScenePool(scenes, render_batch(scenes, seed + 1, size))
