"""The yardstick's downstream datasets: tasks of the caption world.

Each task is its own classification problem with its own class vocabulary
(phrases of the caption language the tiny CLIP was pretrained on) and its
own appearance shift (each image in one of two of the world's named
photographic styles, :data:`~mmpl_lab.world.STYLES`, with
task-specific extras), written in the CoOp split layout so that the real
reader (``CoOpCustomDataset``) and the real base-to-new wrappers load it:

==========  ==========================  ==================================
task        classes (base: first half)  styles (each image one of the two)
==========  ==========================  ==================================
colours     colour x shape, 24          blurry or dark (+ gray clutter)
patterns    pattern x shape, 24         dark (low contrast, bluish) or
                                        sepia
scenes      shape x background, 24      sepia or blurry (+ stronger
                                        noise)
polygons    polygon x size, 12          grainy or cluttered (+ any
                                        rotation; the fine-grained task:
                                        the tiny CLIP is weak on it, as
                                        real CLIP is on FGVCAircraft)
infrared    colour x shape, 24          infrared (red cast) or night
                                        vision (green cast): colour
                                        casts the CLIP never saw
                                        (:data:`UNSEEN_STYLES`), as
                                        satellite photos are far from
                                        real CLIP's pretraining (EuroSAT)
==========  ==========================  ==================================

Each image of a task is rendered in its first style or, with probability
:data:`SECOND_STYLE_P`, its second (v4), as the photos of a real dataset
differ in their conditions from image to image. A fixed context can name
at most one of them; what an image-conditioned prompt reads from the image
(CoCoOp's meta-net) can tell them apart, on base and new classes alike.

The CLIP saw the first four tasks' styles in pretraining, mostly named in
the caption ("a blurry photo of a red star."); the tasks' prompt template
does not name it ("a photo of a red star."), so the zero-shot prompt is off
the images' style and a learned context has something to find, as CoOp's
context finds "a satellite photo of" on EuroSAT. The infrared task's two
colour casts were never seen (v5): no prompt can name them, and the frozen
image features themselves are off, as on EuroSAT, where the papers' deep
prompts gain the most over text-only ones (MaPLe 73.2 new vs CoCoOp 60.0).

A class name does not say everything about its images, as on real
datasets (photos of a class share a context its name does not mention).
Every attribute a class name does not fix (colour, pattern, size,
position, background, :data:`UNNAMED_VALUES`) takes the class's *typical*
value, drawn once per task and class, with probability :data:`TYPICAL`
(independently per attribute), and a random value otherwise: in the
colours task a "red star" is mostly plain, big, on the left and on water,
sometimes anything. Zero-shot CLIP reads only the name; a few shots show
the typical attributes too, so a 16-shot probe on the frozen image
features is far above zero-shot on the base classes (the headroom check),
and a learner that fits them on base classes has nothing to carry to the
new ones, whose typical attributes are their own: the room CoOp gains in
and over-fits in on the real benchmark. The typical values are part of
the task, not of the seed: the std over seeds does not cover them.

Classes of a product A x B are ordered along diagonals (value i of A with
value (i + d) mod |B| of B, d = 0, 1, ...; :func:`diagonal_product`), so
that the base half covers every value of both attributes and the new
classes are unseen *combinations* of seen values, as new classes on the
real benchmark are new names of a familiar domain ("Boeing 737-300" after
"Boeing 737-200"). A learner that ties a base class's typical attributes
to the words of its name meets the same words in new classes with other
typical attributes: how CoOp's base-class fit costs new-class accuracy
here (an A-major split, where new names have words no base name has,
left CoOp's new accuracy at zero-shot's: docs/yardstick.md).
"""
import json
import os
import os.path as osp
import zlib
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from mmpl.utils.errors import ConfigError, ExistingFileError
from . import world
from .world import Obj, Scene, Style

SPLIT_FILE = 'split_world.json'
INFO_FILE = 'world_task.json'
IMAGE_DIR = 'images'
TEMPLATE = 'a photo of a {}.'
#: test images per split (base, new) at least; train and val per class
MIN_TEST_PER_SPLIT = 1000
#: probability that an attribute a class name does not fix takes the
#: class's typical value (see the module doc)
TYPICAL = 0.9
#: probability that an image of a task is rendered in the task's second
#: style (v4; see the module doc)
SECOND_STYLE_P = 0.5
TRAIN_PER_CLASS = 32
VAL_PER_CLASS = 4
#: the attributes a class can have a typical value of, and their values
UNNAMED_VALUES: Dict[str, Tuple[str, ...]] = dict(
    colour=tuple(world.COLOURS), pattern=world.PATTERNS,
    size=tuple(world.SIZES), position=tuple(world.POSITIONS),
    background=world.BACKGROUNDS)


@dataclass(frozen=True)
class Task:
    """One downstream dataset: class names, how a class's scene is drawn
    at random (``scene``: every attribute but the ``named`` ones at
    random; :meth:`draw` adds the typical ones), and the appearance shift
    (``shift``: the world style it is rendered in; ``style``: that style
    with the task's extras; ``second_shift`` / ``second_style``: the
    other style an image is rendered in with probability
    ``second_style_p``, with the same extras)."""
    name: str
    classes: Tuple[str, ...]
    scene: Callable[[str, np.random.Generator], Scene]
    shift: str
    style: Style
    named: Tuple[str, ...]
    second_shift: str
    second_style: Style
    typical_p: float = TYPICAL
    second_style_p: float = SECOND_STYLE_P
    template: str = TEMPLATE

    def typical_values(self) -> Dict[str, Dict[str, str]]:
        """class -> its typical value of every attribute its name does not
        fix (:data:`UNNAMED_VALUES`), drawn once from the task's name."""
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        free = [k for k in UNNAMED_VALUES if k not in self.named]
        return {c: {k: _pick(UNNAMED_VALUES[k], rng) for k in free}
                for c in self.classes}

    def draw(self, name: str, rng: np.random.Generator,
             typical_values: Dict[str, str]) -> Scene:
        """A random scene of class ``name``: each attribute its name does
        not fix takes the class's typical value (``typical_values``: its
        entry of :meth:`typical_values`) with probability
        :attr:`typical_p`."""
        scene = self.scene(name, rng)
        if not self.typical_p:
            return scene
        keep = {k: v for k, v in typical_values.items()
                if rng.random() < self.typical_p}
        background = keep.pop('background', scene.background)
        return replace(scene, background=background,
                       objects=(replace(scene.objects[0], **keep), )
                       + scene.objects[1:])

    def second_style_images(self, n: int, seed: int) -> np.ndarray:
        """(n,) bool: which of n images (of a split drawn with ``seed``)
        are rendered in the second style."""
        return np.random.default_rng(seed + 7).random(n) < self.second_style_p

    def styled_template(self) -> str:
        """The template naming the task's (first) style ("a blurry photo of
        a {}."): the prompt a user who knew the style would write."""
        return self.template.replace('a photo', f'a {self.shift} photo')

    def test_per_class(self) -> int:
        """Test images per class so that each split has at least
        MIN_TEST_PER_SPLIT (the smaller split, new, has floor(n/2))."""
        return -(-MIN_TEST_PER_SPLIT // (len(self.classes) // 2))


def diagonal_product(first: Sequence[str], second: Sequence[str],
                     join: Callable[[str, str], str]) -> Tuple[str, ...]:
    """All ``join(a, b)``, ordered along diagonals (see the module doc)."""
    n = max(len(first), len(second))
    names = []
    for d in range(n):
        for i in range(n):
            name = join(first[i % len(first)], second[(i + d) % len(second)])
            if name not in names:
                names.append(name)
    return tuple(names)


def _pick(values, rng: np.random.Generator):
    values = tuple(values)
    return values[int(rng.integers(len(values)))]


def _free_object(rng: np.random.Generator, **fixed) -> Obj:
    obj = dict(shape=_pick(world.SHAPES, rng))
    obj.update((k, _pick(UNNAMED_VALUES[k], rng))
               for k in ('colour', 'pattern', 'size', 'position'))
    obj.update(fixed)
    return Obj(**obj)


def _free_background(rng: np.random.Generator) -> str:
    return _pick(UNNAMED_VALUES['background'], rng)


def _colours_scene(name: str, rng: np.random.Generator) -> Scene:
    colour, shape = name.split(' ')
    return Scene((_free_object(rng, colour=colour, shape=shape), ),
                 _free_background(rng))


def _patterns_scene(name: str, rng: np.random.Generator) -> Scene:
    pattern, shape = name.split(' ')
    return Scene((_free_object(rng, pattern=pattern, shape=shape), ),
                 _free_background(rng))


def _scenes_scene(name: str, rng: np.random.Generator) -> Scene:
    shape, background = name.split(' on ')
    background = {'a dark background': 'dark'}.get(background, background)
    return Scene((_free_object(rng, shape=shape), ), background)


def _polygons_scene(name: str, rng: np.random.Generator) -> Scene:
    size, shape = name.split(' ')
    return Scene((_free_object(rng, size=size, shape=shape), ),
                 _free_background(rng))


#: colour casts the CLIP never saw in pretraining (not in
#: :data:`~mmpl_lab.world.STYLES`): the infrared task's two styles
UNSEEN_STYLES: Dict[str, Style] = {
    'infrared': Style(tint=(235, 50, 40), tint_amount=0.25, contrast=0.85,
                      noise=6),
    'night-vision': Style(tint=(40, 230, 60), tint_amount=0.25,
                          contrast=0.85, noise=8),
}


def _task(name: str, classes: Tuple[str, ...],
          scene: Callable[[str, np.random.Generator], Scene], shift: str,
          second_shift: str, named: Tuple[str, ...], **extras) -> Task:
    """A task rendered in style ``shift`` or ``second_shift`` (of the
    world's or :data:`UNSEEN_STYLES`), each changed by ``extras``."""
    styles = {**world.STYLES, **UNSEEN_STYLES}
    return Task(name, classes, scene, shift,
                replace(styles[shift], **extras), named, second_shift,
                replace(styles[second_shift], **extras))


TASKS: Dict[str, Task] = {t.name: t for t in (
    _task('colours',
          diagonal_product(('red', 'green', 'blue', 'yellow', 'purple',
                            'orange'),
                           ('circle', 'square', 'triangle', 'star'),
                           lambda c, s: f'{c} {s}'),
          _colours_scene, 'blurry', 'dark', ('colour', 'shape'), clutter=3,
          colour_noise=14),
    _task('patterns',
          diagonal_product(('plain', 'striped', 'dotted', 'checkered'),
                           ('circle', 'square', 'triangle', 'hexagon',
                            'heart', 'cross'),
                           lambda p, s: f'{p} {s}'),
          _patterns_scene, 'dark', 'sepia', ('pattern', 'shape')),
    _task('scenes',
          diagonal_product(('circle', 'square', 'star', 'cross',
                            'diamond', 'arrow'),
                           ('grass', 'sand', 'water', 'a dark background'),
                           lambda s, b: f'{s} on {b}'),
          _scenes_scene, 'sepia', 'blurry', ('shape', 'background'),
          noise=14),
    _task('polygons',
          diagonal_product(('pentagon', 'hexagon', 'octagon', 'circle',
                            'square', 'diamond'), ('small', 'big'),
                           lambda s, z: f'{z} {s}'),
          _polygons_scene, 'grainy', 'cluttered', ('size', 'shape'),
          rotation=np.pi),
    _task('infrared',
          diagonal_product(('pink', 'brown', 'cyan', 'gray', 'green',
                            'blue'),
                           ('hexagon', 'heart', 'diamond', 'arrow'),
                           lambda c, s: f'{c} {s}'),
          _colours_scene, 'infrared', 'night-vision', ('colour', 'shape')),
)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f'unknown yardstick task {name!r}; choose from '
                          f'{sorted(TASKS)}')
    return TASKS[name]


def sample_split(task: Task, per_class: int, seed: int,
                 size: int = 64) -> Tuple[np.ndarray, np.ndarray]:
    """(N, size, size, 3) uint8 images and (N, ) labels, ``per_class``
    scenes of every class (deterministic in ``seed``), each rendered in
    the task's style or its second one (:meth:`Task.second_style_images`).
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(task.classes)), per_class)
    typical = task.typical_values()
    scenes = [task.draw(task.classes[c], rng, typical[task.classes[c]])
              for c in labels]
    second = task.second_style_images(len(scenes), seed)
    images = np.empty((len(scenes), size, size, 3), np.uint8)
    for which, style, render_seed in ((~second, task.style, seed + 1),
                                      (second, task.second_style, seed + 2)):
        if which.any():
            images[which] = world.render_batch(
                [x for x, w in zip(scenes, which) if w], render_seed, size,
                style)
    return images, labels


def write_task(task: Task, data_root: str, seed: int = 0, size: int = 64,
               test_per_class: Optional[int] = None) -> str:
    """Write ``task`` in the CoOp split layout under ``data_root``:
    ``images/<class>/<split>_<n>.png``, ``split_world.json`` and
    ``world_task.json`` (what was written). Refuses a non-empty folder
    without this writer's files; a folder written with the same settings is
    kept as is (the yardstick resumes), one with other settings is an
    error. ``test_per_class`` (default :meth:`Task.test_per_class`) is for
    quick looks and smoke tests only. Returns ``data_root``."""
    split_path = osp.join(data_root, SPLIT_FILE)
    written = dict(task=task.name, seed=seed, size=size,
                   test_per_class=test_per_class or task.test_per_class(),
                   typical=task.typical_p,
                   second_style=[task.second_shift, task.second_style_p])
    info_path = osp.join(data_root, INFO_FILE)
    if osp.isfile(split_path) and osp.isfile(info_path):
        with open(info_path) as f:
            found = json.load(f)
        if found != written:
            raise ExistingFileError(
                f'{data_root} holds task data written with {found}, not '
                f'{written}; use another --work-dir (or remove that folder)')
        return data_root
    if osp.isdir(data_root) and os.listdir(data_root):
        raise ExistingFileError(
            f'{data_root} is not empty and holds no {SPLIT_FILE} and '
            f'{INFO_FILE}; refusing to write generated images into it')
    split: Dict[str, List] = {}
    counts = (('train', TRAIN_PER_CLASS), ('val', VAL_PER_CLASS),
              ('test', written['test_per_class']))
    for k, (split_name, per_class) in enumerate(counts):
        images, labels = sample_split(task, per_class, seed * 10 + k, size)
        entries, seen = [], {}
        for image, label in zip(images, labels):
            name = task.classes[label]
            folder = name.replace(' ', '_')
            n = seen.get(label, 0)
            seen[label] = n + 1
            rel = f'{folder}/{split_name}_{n:03d}.png'
            os.makedirs(osp.join(data_root, IMAGE_DIR, folder), exist_ok=True)
            Image.fromarray(image).save(osp.join(data_root, IMAGE_DIR, rel))
            entries.append([rel, int(label), name])
        split[split_name] = entries
    with open(split_path, 'w') as f:
        json.dump(split, f)
    with open(info_path, 'w') as f:  # written last: marks a finished write
        json.dump(written, f)
    return data_root
