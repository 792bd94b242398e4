"""``tools/test.py --show-dir``: test images with their true class and the
top-k predicted classes, one folder per evaluated split.

mmpretrain's ``VisualizationHook`` (what its ``tools/test.py --show-dir``
turns on) draws with the class names of the visualizer's dataset meta,
which the runner sets once from the test dataloader; mmpl evaluates several
named splits in one run, each with its own class names (base / new), and
restarts the batch index per split, so that hook would name the new split's
classes wrongly and write both splits' images under the same names.
:class:`SplitVisualizationHook` draws through the same visualizer
(mmpretrain's ``UniversalVisualizer.visualize_cls``) with the current
split's class names, into ``<out_dir>/<split>/``.
"""
import math
import os
import os.path as osp
from typing import Dict, Optional

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ...utils.errors import ConfigError
from ...utils.io import mark_outputs
from ..utils import split_label, unwrap_model


@HOOKS.register_module()
class SplitVisualizationHook(Hook):
    """Draw test predictions per split (see the module docstring).

    Args:
        enable: draw at all [False, as mmpretrain's hook].
        out_dir: the folder; each split's images go to ``out_dir/<split>/``
            (``test`` for an unnamed split).
        num: images per split, spread evenly over the split (every
            ``ceil(len / num)``-th sample) [16].
        topk: predicted classes written per image, with their scores [3].
        min_size: images with a shorter side are enlarged to it first, so
            that the text stays readable (64 px inputs) [224].

    Only the main process draws (its share of the samples in a
    multi-process run).
    """

    priority = 'NORMAL'

    def __init__(self,
                 enable: bool = False,
                 out_dir: Optional[str] = None,
                 num: int = 16,
                 topk: int = 3,
                 min_size: int = 224):
        self.enable = enable
        self.out_dir = out_dir
        self.num = num
        self.topk = topk
        self.min_size = min_size
        self.written: Dict[str, list] = {}

    def before_test(self, runner) -> None:
        if not self.enable:
            return
        if not hasattr(runner.visualizer, 'visualize_cls'):
            raise ConfigError(
                f'--show-dir draws with mmpretrain\'s UniversalVisualizer; '
                f'the config\'s visualizer is '
                f'{type(runner.visualizer).__name__}. Set visualizer = '
                "dict(type='UniversalVisualizer')")
        if self.out_dir is None:
            raise ConfigError('SplitVisualizationHook needs out_dir. Give '
                              '--show-dir DIR')
        self.written = {}

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs=None) -> None:
        if not self.enable or not outputs or not is_main_process():
            return
        loop = runner.test_loop
        folder = split_label(getattr(loop, 'current_split', None))
        dataset = loop.dataloader.dataset
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        every = max(1, math.ceil(len(dataset) / self.num))
        preprocessor = unwrap_model(runner.model).data_preprocessor
        # mmpretrain's ClsDataPreprocessor / mmengine's ImgDataPreprocessor
        to_rgb = bool(getattr(preprocessor, 'to_rgb', False) or
                      getattr(preprocessor, '_channel_conversion', False))
        first = batch_idx * len(outputs)  # without a sample_idx
        for i, (image, sample) in enumerate(zip(data_batch['inputs'],
                                                outputs)):
            index = sample.get('sample_idx', first + i)
            if index % every:
                continue
            self._draw(runner, folder, index, image, sample, classes, to_rgb)

    def _draw(self, runner, folder: str, index: int, image: torch.Tensor,
              sample, classes, to_rgb: bool) -> None:
        """Write one image: (3, H, W) uint8 as packed (BGR when the data
        preprocessor converts to RGB), its true class, the top-k."""
        image = image.permute(1, 2, 0).cpu().numpy()  # (H, W, 3)
        if to_rgb:
            image = image[..., ::-1]
        score = sample.pred_score
        k = min(self.topk, score.numel())
        shown = sample.clone().set_pred_label(score.topk(k).indices)
        path = sample.get('img_path') or 'image'
        name = f'{index:05d}_{osp.splitext(osp.basename(path))[0]}.png'
        out = osp.join(self.out_dir, folder)
        os.makedirs(out, exist_ok=True)
        short = min(image.shape[:2])
        runner.visualizer.visualize_cls(
            image.copy(), shown, classes=list(classes) if classes else None,
            resize=self.min_size if short < self.min_size else None,
            out_file=osp.join(out, name), name=name)
        self.written.setdefault(folder, []).append(name)

    def after_test_epoch(self, runner, metrics=None) -> None:
        if not self.enable or not is_main_process():
            return
        for folder, names in self.written.items():
            mark_outputs(osp.join(self.out_dir, folder), names)
            runner.logger.info(
                f'--show-dir: {len(names)} images of split {folder} in '
                f'{osp.join(self.out_dir, folder)}')
