"""Classify images with a trained prompt, against any class names.

The point of prompt learning is transfer: prompts learned on some classes
classify images of classes never seen in training. :class:`PromptInferencer`
builds the model from a checkpoint alone (an mmpl checkpoint carries the
model's constructor arguments, the CLIP architecture and weights tag, the
prompt parameters and the training class names in ``meta['mmpl']``) or from
the training config, and classifies image files, folders, PIL images or
arrays, in batches, against ``classes`` (default: the checkpoint's)::

    from mmpl.apis import PromptInferencer
    inferencer = PromptInferencer('work_dirs/coop/epoch_50.pth',
                                  classes=['river', 'sea or lake'])
    results = inferencer(['a.jpg', 'photos/'], topk=2)
    results[0]['pred_class'], results[0]['topk_classes']

Image-conditioned methods (CoCoOp, CTP, FTP, TVP, DGPrompt) work the same
way: the classifier conditions the prompts on each image.

mmpretrain's ``ImageClassificationInferencer``: it does **not** work from an
mmpl config or checkpoint path (``ImageClassificationInferencer(config,
pretrained=ckpt)``): it reads the pipeline from
``cfg.test_dataloader.dataset.pipeline``, but mmpl's base-to-new configs
evaluate named splits (``test_dataloader.base`` / ``.new``), so it stops
with an ``AttributeError``; and it loads the checkpoint with mmengine's
``load_checkpoint``, which never gives the classifier its class names
(``set_classes``), so ``predict`` would stop with "no class names". It does
work on the model this inferencer built, which carries both (a
``_config`` with a single test pipeline and the class names)::

    from mmpretrain import ImageClassificationInferencer
    model = PromptInferencer(ckpt, classes=names).model
    mm = ImageClassificationInferencer(model)
    mm('a.jpg')[0]['pred_class']

(``tests/test_inference.py`` checks both statements.)
"""
import copy
import os
import os.path as osp
import sys
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from ..utils.checks import check_device, check_int
from ..utils.errors import ConfigError, MissingFileError
from .preflight import read_checkpoint

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                    '.tiff', '.webp')


def list_images(path: str) -> List[str]:
    """``path`` itself for a file; for a folder, every image below it
    (recursive, by extension), sorted."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise MissingFileError(
            f'image path not found: {path!r}. Give an image file or a folder '
            'of images')
    found = []
    for root, dirs, files in os.walk(path, followlinks=True):
        dirs.sort()
        found += [osp.join(root, f) for f in sorted(files)
                  if f.lower().endswith(IMAGE_EXTENSIONS)]
    return found


def read_class_names(path: str) -> List[str]:
    """Class names from a text file: one per line; blank lines and lines
    starting with ``#`` are ignored."""
    if not osp.isfile(path):
        raise MissingFileError(
            f'class file not found: {path!r}. Give a text file with one '
            'class name per line')
    try:
        with open(path, encoding='utf-8') as f:
            names = [line.strip() for line in f]
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f'class file {path!r} is not UTF-8 text (byte '
            f'{exc.object[exc.start]:#04x} at offset {exc.start}). Save it '
            'as UTF-8') from None
    names = [n for n in names if n and not n.startswith('#')]
    if not names:
        raise ConfigError(f'class file {path!r} holds no class names. Write '
                         'one class name per line')
    return names


def class_names_option(classes: Optional[str] = None,
                       classes_file: Optional[str] = None
                       ) -> Optional[List[str]]:
    """The class names of a tool's ``--classes "a,b"`` (comma-separated)
    or ``--classes-file FILE`` (:func:`read_class_names`); None when
    neither is given."""
    if classes_file:
        return read_class_names(classes_file)
    if classes is None:
        return None
    names = [n.strip() for n in classes.split(',') if n.strip()]
    if not names:
        raise ConfigError('--classes is empty. Give names separated by '
                          'commas, e.g. --classes "cat,dog"')
    return names


def _not_an_input(item) -> ConfigError:
    return ConfigError(f'cannot classify a value of type '
                       f'{type(item).__name__}. Give a path, a folder, a PIL '
                       'image, an array or a list of them')


def test_pipeline_of(cfg) -> Optional[list]:
    """The test pipeline of a config (its first evaluated split), without
    the image loading transform; None when it has none."""
    for key in ('test_dataloader', 'val_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        loaders = [loader] if 'dataset' in loader else list(loader.values())
        for split in loaders:
            node = split.get('dataset') if isinstance(split, dict) else None
            while isinstance(node, dict):
                if node.get('pipeline'):
                    return [copy.deepcopy(dict(t)) for t in node['pipeline']
                            if 'LoadImage' not in str(t.get('type'))]
                node = node.get('dataset')
    return None


def clip_test_pipeline(image_size: int) -> list:
    """The configs' test pipeline at ``image_size``: short side resized
    (bicubic), centre crop."""
    return [
        dict(type='ResizeEdge', scale=image_size, edge='short',
             interpolation='bicubic', backend='pillow'),
        dict(type='CenterCrop', crop_size=image_size),
        dict(type='PackInputs'),
    ]


def load_prompt_weights(model: torch.nn.Module, state_dict: dict) -> None:
    """Load the checkpoint's prompt parameters; every trainable tensor of
    ``model`` must be in it and nothing else."""
    state = {(k[len('module.'):] if k.startswith('module.') else k): v
             for k, v in state_dict.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith('_extra_state')]
    unexpected = [k for k in unexpected if not k.endswith('_extra_state')]
    if missing or unexpected:
        raise ConfigError(
            'checkpoint does not fit the model: '
            + (f'missing {missing[:3]} ' if missing else '')
            + (f'unexpected {unexpected[:3]} ' if unexpected else '')
            + '. Build it with the config it was trained with (--config)')


class PromptInferencer:
    """Classify images with a trained prompt against any class names.

    Args:
        checkpoint: an mmpl checkpoint (``tools/train.py``). Alone, it is
            enough for checkpoints written since the model's constructor
            arguments are in ``meta['mmpl']['model']``; older ones need
            ``config``. None with ``config``: the config's initial prompts
            (e.g. ``ZeroShotCLIP``).
        config: the training config (path or Config): its ``model`` and
            test pipeline are used instead of the checkpoint's meta.
        classes: class names to classify against (default: the
            checkpoint's training classes).
        template: hand-crafted template of the class anchors, used by the
            methods that have them (default: the one the checkpoint was
            trained with, else the model's).
        device: e.g. 'cuda:0' (default: CUDA when available, else CPU).
        pretrained: override the CLIP weights (a local file for offline use,
            or an open_clip tag).

    Calling it returns one dict per image (files of folders expanded, in
    order): ``image`` (the path, or ``<input i>`` for arrays and PIL
    images), ``pred_label``, ``pred_class``, ``pred_score`` and the top-k
    ``topk_labels`` / ``topk_classes`` / ``topk_scores`` (softmax over
    ``classes``). With ``skip_errors=True`` an unreadable image gives
    ``image`` and ``error`` instead of raising.

    Arrays are HxWx3 uint8 in **BGR** order, as ``mmcv.imread`` and
    mmpretrain's inferencer take them (HxW gray is accepted); PIL images are
    converted from RGB.
    """

    def __init__(self,
                 checkpoint: Optional[str] = None,
                 config=None,
                 classes: Optional[Sequence[str]] = None,
                 template: Optional[str] = None,
                 device: Union[str, torch.device, None] = None,
                 pretrained: Optional[str] = None):
        from mmengine.dataset import Compose
        from mmengine.registry import DefaultScope
        from mmpretrain.registry import MODELS, TRANSFORMS

        import mmpl  # noqa: F401  (registers mmpl's modules)
        from ..utils.config_file import read_config
        if device is not None:  # before any work
            check_device(device)
        if checkpoint is None and config is None:
            raise ConfigError('PromptInferencer needs a checkpoint, a config '
                             'or both')
        ckpt = read_checkpoint(checkpoint) if checkpoint else {}
        meta = (ckpt.get('meta') or {}).get('mmpl') or {}
        if config is not None:
            cfg = read_config(config) if isinstance(
                config, (str, os.PathLike)) else config
            model_cfg = cfg.model.to_dict() if hasattr(
                cfg.model, 'to_dict') else copy.deepcopy(dict(cfg.model))
            pipeline = test_pipeline_of(cfg)
        else:
            if not ckpt.get('meta', {}).get('mmpl'):
                raise ConfigError(
                    f'{checkpoint!r} has no meta["mmpl"]: not a checkpoint '
                    'of tools/train.py. Pass the training config (--config)')
            model_cfg = copy.deepcopy(meta.get('model'))
            if not model_cfg:
                raise ConfigError(
                    f'{checkpoint!r} does not carry the model\'s settings '
                    '(written by an older mmpl). Pass the config it was '
                    'trained with (--config)')
            pipeline = None
        if pretrained is not None:
            model_cfg.setdefault('clip', {})['pretrained'] = pretrained
        config_classes = model_cfg.pop('classnames', None)
        model_cfg.pop('init_cfg', None)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = MODELS.build(model_cfg)
        if ckpt:
            if 'state_dict' not in ckpt:
                raise ConfigError(f'{checkpoint!r} has no state_dict')
            load_prompt_weights(model, ckpt['state_dict'])
        if device is None:
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.model = model.to(device).eval()
        self.checkpoint_classes: Optional[List[str]] = list(
            meta.get('classes') or config_classes or ()) or None
        self.default_template = meta.get('template')

        if pipeline is None:
            size = getattr(model.clip.model.visual, 'image_size', 224)
            size = int(size[0] if isinstance(size, (tuple, list)) else size)
            pipeline = clip_test_pipeline(size)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            self.pipeline = Compose([TRANSFORMS.build(t) for t in pipeline])
            self._load = TRANSFORMS.build(
                dict(type='CheckedLoadImageFromFile'))
        self.pipeline_cfg = pipeline
        self.set_classes(classes, template)

    @classmethod
    def zero_shot(cls,
                  arch: Optional[str] = None,
                  pretrained: Optional[str] = None,
                  config=None,
                  classes: Optional[Sequence[str]] = None,
                  template: Optional[str] = None,
                  device: Union[str, torch.device, None] = None
                  ) -> 'PromptInferencer':
        """Zero-shot CLIP, no checkpoint: the frozen CLIP's features of
        ``template`` (default 'a photo of a {}.') filled with each class
        name (``ZeroShotCLIP``). The CLIP is ``arch`` with ``pretrained``
        weights, or the one of ``config`` (a path or Config; its test
        pipeline too; ``pretrained`` then overrides its weights). Called
        like an inferencer built from a checkpoint, with the same
        results."""
        from mmengine.config import Config

        from ..utils.config_file import read_config
        if (arch is None) == (config is None):
            raise ConfigError('zero-shot CLIP needs either arch (with '
                              'pretrained weights) or a config. Give one')
        if config is None:
            if not pretrained:
                raise ConfigError(
                    f'zero-shot CLIP {arch} needs pretrained weights (an '
                    'open_clip tag such as openai, or a local file). Give '
                    'pretrained')
            cfg = Config(dict(model=dict(clip=dict(arch=arch))))
        else:
            cfg = read_config(config) if isinstance(
                config, (str, os.PathLike)) else copy.deepcopy(config)
        model = cfg.model
        kept = {k: model[k] for k in ('clip', 'template', 'data_preprocessor',
                                      'text_chunk_size') if k in model}
        cfg.model = dict(kept, type='PromptCLIPClassifier',
                         text_prompt=dict(type='ZeroShotCLIP'))
        return cls(None, config=cfg, classes=classes, template=template,
                   device=device, pretrained=pretrained)

    # ---------------------------------------------------------------- classes
    def set_classes(self, classes: Optional[Sequence[str]] = None,
                    template: Optional[str] = None) -> None:
        """Classify against ``classes`` from now on (None: the checkpoint's
        training classes)."""
        if isinstance(classes, str):  # list('cat') would be 'c', 'a', 't'
            raise ConfigError(
                f'classes must be a list of class names, got the string '
                f'{classes!r}. Pass a list, e.g. {classes.split(",")!r}')
        names = list(classes) if classes is not None else \
            self.checkpoint_classes
        if not names:
            raise ConfigError('no class names: the checkpoint holds none. '
                             'Pass classes (--classes a,b,c or '
                             '--classes-file FILE)')
        names = [str(n).strip() for n in names]
        if any(not n for n in names):
            raise ConfigError('empty class name in the class list. Give '
                             'non-empty names')
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError(f'class names repeat: {dup[:3]}. Give each '
                             'class once')
        trained = self.checkpoint_classes
        if getattr(self.model.text_prompt, 'class_specific', False) and \
                trained and names != list(trained):
            raise ConfigError(
                f'this checkpoint learned one context per class for its '
                f'{len(trained)} training classes (class_specific=True); it '
                f'cannot classify other names (got {names[:3]}...). Leave '
                'classes out (the training classes) or use a checkpoint with '
                'a shared context')
        self.classes = names
        self.model.set_classes(names, template or self.default_template)
        # what mmpretrain's ImageClassificationInferencer reads (see the
        # module docstring)
        from mmengine.config import Config
        self.model._dataset_meta = dict(classes=tuple(names))
        self.model._config = Config(dict(test_dataloader=dict(dataset=dict(
            pipeline=[dict(type='LoadImageFromFile')] + self.pipeline_cfg))))

    # ------------------------------------------------------------------ input
    @staticmethod
    def expand_inputs(inputs) -> List[Any]:
        """Paths (files of folders expanded), arrays and PIL images as one
        flat list."""
        if isinstance(inputs, (str, os.PathLike, np.ndarray)) or hasattr(
                inputs, 'getpixel'):
            inputs = [inputs]
        elif not isinstance(inputs, (list, tuple)):
            raise _not_an_input(inputs)
        out: List[Any] = []
        for item in inputs:
            if isinstance(item, (str, os.PathLike)):
                out += list_images(os.fspath(item))
            else:
                out.append(item)
        return out

    def prepare(self, item) -> dict:
        """One input (a path, PIL image or BGR array) through the test
        pipeline: the packed dict (``inputs`` (3, H, W) uint8 as loaded,
        ``data_samples``) that ``model.data_preprocessor`` batches."""
        if isinstance(item, str):
            results = self._load(dict(img_path=item))
        else:
            if hasattr(item, 'getpixel'):  # PIL
                img = np.asarray(item.convert('RGB'))[..., ::-1]
            elif isinstance(item, np.ndarray):
                img = item
                if img.ndim == 2:
                    img = np.stack([img] * 3, axis=-1)
                if img.ndim != 3 or img.shape[2] not in (3, 4) \
                        or not img.size:
                    raise ConfigError(f'array of shape {item.shape} is not an '
                                     'image. Give HxWx3 (BGR) or HxW, H and '
                                     'W >= 1')
                if img.dtype != np.uint8:
                    raise ConfigError(
                        f'array of dtype {img.dtype} is not an 8-bit image. '
                        'Give uint8 values 0-255, e.g. '
                        '(x * 255).round().astype(np.uint8) for floats in '
                        '[0, 1]')
                img = img[..., :3]
            else:
                raise _not_an_input(item)
            img = np.ascontiguousarray(img)
            results = dict(img=img, img_shape=img.shape[:2],
                           ori_shape=img.shape[:2])
        return self.pipeline(results)

    # ---------------------------------------------------------------- predict
    def __call__(self,
                 inputs,
                 topk: int = 5,
                 batch_size: int = 16,
                 skip_errors: bool = False,
                 progress: bool = False) -> List[Dict[str, Any]]:
        """Classify ``inputs`` (a path, folder, PIL image, array or a list
        of them). See the class docstring for the result dicts."""
        from mmengine.dataset import pseudo_collate
        check_int('topk', topk)
        check_int('batch_size', batch_size)
        items = self.expand_inputs(inputs)
        bar = None
        if progress and items:
            from mmengine.utils import ProgressBar
            bar = ProgressBar(len(items), file=sys.stderr)
        results: List[Dict[str, Any]] = []
        for start in range(0, len(items), batch_size):
            batch, names = [], []
            for i, item in enumerate(items[start:start + batch_size]):
                name = item if isinstance(item, str) else \
                    f'<input {start + i}>'
                try:
                    batch.append(self.prepare(item))
                    names.append(name)
                except (FileNotFoundError, ValueError, TypeError,
                        OSError) as e:
                    if not skip_errors:
                        raise
                    results.append(dict(image=name, error=str(e)))
            if batch:
                results += self._predict(pseudo_collate(batch), names, topk)
            if bar is not None:
                for _ in range(len(items[start:start + batch_size])):
                    bar.update()
        if bar is not None:
            sys.stderr.write('\n')
        return results

    def _predict(self, data: dict, names: List[str],
                 topk: int) -> List[Dict[str, Any]]:
        with torch.no_grad():
            samples = self.model.test_step(data)
        scores = torch.stack([s.pred_score for s in samples]).float().cpu()
        k = max(1, min(topk, scores.shape[1]))
        top_scores, top_labels = scores.topk(k, dim=1)
        out = []
        for name, s, lab in zip(names, top_scores.tolist(),
                                top_labels.tolist()):
            out.append(dict(image=name, pred_label=lab[0],
                            pred_class=self.classes[lab[0]], pred_score=s[0],
                            topk_labels=lab,
                            topk_classes=[self.classes[j] for j in lab],
                            topk_scores=s))
        return out

