"""Where a method looks: the per-class maps over the image patches that the
prompt modules actually computed for one image (what
``tools/visualization/vis_prompt_attention.py`` draws).

    from mmpl.apis import PromptInferencer
    from mmpl.apis.attention import prompt_attention, plot_attention
    inferencer = PromptInferencer(ckpt, classes=['red circle', 'blue star'])
    maps = prompt_attention(inferencer, 'two_objects.png')
    maps.maps['CTP']          # (C, gh, gw): class c's weights over patches
    plot_attention(maps, 'attention.png')

The maps, each a softmax over the image's N patches per class:

* ``'CLIP'`` (every method): the frozen CLIP's patch-text similarity of
  the class's hand-crafted anchor ``t0_c`` to the value-path patch
  features (``FrozenCLIP.encode_image_dense``, MaskCLIP's readout),
  ``softmax_n(s cos(t0_c, v_n))`` at the CLIP's logit scale ``s``: what
  CTP's pooling is at initialisation.
* ``'CTP'``: CTP's ``attention_weights`` (its learned scale and maps) over
  the keys it pooled, from the frozen pass and the anchors it was given.
* ``'TFT'``: TFT's ``SimilarityPooling`` weights of the (prompted) text
  features over the dense features of the image pass, the re-pooling that
  tunes class c's image feature (one map for all classes with the
  text-free ``query='image'`` or ``class_agnostic``).

and for TVP, which weighs classes rather than patches: the classes it kept
(``kept``, the smallest top set reaching ``rho`` of the affinity) and their
renormalised affinities (``class_weights``; 0 for a dropped class).

The module inputs are recorded by forward hooks during one ordinary
``forward_features`` of the classifier, so every map is the one the model
computed for its prediction, not a re-implementation.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..utils.errors import ConfigError

#: map kinds, in the figure's row order
MAP_KINDS = ('CLIP', 'CTP', 'TFT')


@dataclass
class AttentionMaps:
    """The maps of one image (see the module docstring).

    ``image``: (H, W, 3) uint8 RGB, the model's input (after the test
    pipeline's resize and crop); ``classes``: the class set; ``scores``:
    (C,) the model's softmax scores; ``maps``: kind -> (C, gh, gw) weights
    over the patch grid, each class's summing to 1 over the patches (a
    kind that also attended to the class token keeps that token's share
    in ``cls_weight[kind]``, (C,)); ``kept`` / ``class_weights`` /
    ``affinity``: TVP's (C,) kept mask, renormalised weights and affinity
    over the whole class set, None without TVP.
    """
    image: np.ndarray
    classes: List[str]
    scores: Tensor
    maps: Dict[str, Tensor] = field(default_factory=dict)
    cls_weight: Dict[str, Tensor] = field(default_factory=dict)
    kept: Optional[Tensor] = None
    class_weights: Optional[Tensor] = None
    affinity: Optional[Tensor] = None

    def upsampled(self, kind: str) -> Tensor:
        """(C, H, W) map ``kind`` bilinearly upsampled to the image."""
        h, w = self.image.shape[:2]
        return F.interpolate(self.maps[kind].unsqueeze(1), size=(h, w),
                             mode='bilinear', align_corners=False)[:, 0]


def _patch_grid(weights: Tensor, num_patches: int) -> Tensor:
    """(C, K) weights whose last ``num_patches`` keys are the patches
    (row-major) -> (C, g, g)."""
    side = int(round(num_patches ** 0.5))
    if side * side != num_patches:
        raise ConfigError(f'{num_patches} patches do not form a square grid;'
                          ' attention maps need a square ViT patch grid')
    return weights[:, -num_patches:].reshape(-1, side, side)


def clip_similarity_map(model, images: Tensor, anchors: Tensor) -> Tensor:
    """(1, 3, H, W) normalised image, (C, D) anchors -> (C, N) softmax over
    the N patches of ``s cos(t0_c, v_n)`` on the frozen CLIP's value-path
    patch features (the CLIP's logit scale ``s``)."""
    with torch.no_grad():
        values = model.clip.encode_image_dense(images)[2].float()[0, 1:]
    sim = F.normalize(anchors.float(), dim=-1) @ F.normalize(
        values, dim=-1).T  # (C, N)
    return torch.softmax(float(model.clip.logit_scale) * sim, dim=-1)


class _Recorder:
    """Forward hooks keeping the inputs of the model's prompt modules."""

    def __init__(self, model):
        self.inputs: Dict[str, tuple] = {}
        self.handles = []
        for name in ('text_prompt', 'visual_prompt', 'feature_tuner'):
            module = getattr(model, name, None)
            if module is not None:
                self.handles.append(module.register_forward_hook(
                    self._keep(name), with_kwargs=True))

    def _keep(self, name: str):
        def hook(module, args, kwargs, output):
            self.inputs[name] = (args, kwargs)
        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _argument(recorded: tuple, index: int, name: str):
    args, kwargs = recorded
    return args[index] if len(args) > index else kwargs.get(name)


def _ctp_map(model, recorded: tuple):
    """CTP's (C, K) weights, or None when the module is not a CTP with a
    similarity pooling over tokens."""
    from ..prompts import CTP
    ctp = model.text_prompt
    if not isinstance(ctp, CTP) or ctp.pooling != 'similarity' or \
            ctp.attend_over == 'global':
        return None
    image = _argument(recorded, 1, 'image')
    anchors = _argument(recorded, 2, 'anchors')
    return ctp.attention_weights(image, anchors)[0]  # (C, K)


def _tft_map(model, recorded: tuple, num_classes: int):
    """TFT's (C, K) pooling weights, or None without a TFT."""
    from ..prompts import TFT
    from ..prompts.layers import select_tokens
    tft = model.feature_tuner
    if not isinstance(tft, TFT):
        return None
    f = _argument(recorded, 0, 'image_features').float()  # (1, D)
    g = _argument(recorded, 1, 'text_features').float()  # (1, C, D)
    tokens = select_tokens(f, _argument(recorded, 2, 'image_tokens'),
                           tft.attend_over, 'TFT')  # (1, K, D)
    queries = tft.queries(f, g)  # (1, C|1, D)
    weights = tft.pooling.weights(queries, tokens)[0]  # (C|1, K)
    return weights.expand(num_classes, -1)


def _tvp_classes(model, recorded: tuple):
    """TVP's (C,) kept mask, renormalised weights and affinity over the
    whole class set ``softmax_c(s cos(f0, g_c))``; Nones without TVP."""
    from ..prompts import TVP
    tvp = model.visual_prompt
    if not isinstance(tvp, TVP):
        return None, None, None
    text = _argument(recorded, 0, 'text_features')
    image = _argument(recorded, 1, 'image')
    if tvp.text_source == 'anchors':
        text = _argument(recorded, 2, 'anchors').unsqueeze(0)
    unit = F.normalize(text.float(), dim=-1)  # (1|B, C, D)
    _, log_p, kept = tvp.reorganized_text(unit, image.global_feature)
    affinity = tvp.affinity_scores(unit, image.global_feature)[0].softmax(0)
    return kept[0], log_p[0].exp(), affinity  # (C,) each


def prompt_attention(inferencer, image) -> AttentionMaps:
    """The maps of ``image`` (a path, PIL image or BGR array) for the class
    set of ``inferencer`` (a :class:`~mmpl.apis.PromptInferencer`): one
    forward of its model, with the prompt modules' inputs recorded."""
    model = inferencer.model
    packed = inferencer.prepare(image)
    from mmengine.dataset import pseudo_collate
    data = model.data_preprocessor(pseudo_collate([packed]), False)
    inputs = data['inputs']  # (1, 3, H, W) normalised
    recorder = _Recorder(model)
    try:
        with torch.no_grad():
            out = model.forward_features(inputs)
            classes = list(inferencer.classes)
            anchors = model.class_anchors()  # (C, D)
            clip_map = clip_similarity_map(model, inputs, anchors)
            num_patches = clip_map.shape[1]
            found = dict(CLIP=clip_map)
            if 'text_prompt' in recorder.inputs:
                found['CTP'] = _ctp_map(model,
                                        recorder.inputs['text_prompt'])
            if 'feature_tuner' in recorder.inputs:
                found['TFT'] = _tft_map(model,
                                        recorder.inputs['feature_tuner'],
                                        len(classes))
            kept = weights = affinity = None
            if 'visual_prompt' in recorder.inputs:
                kept, weights, affinity = _tvp_classes(
                    model, recorder.inputs['visual_prompt'])
    finally:
        recorder.remove()
    rgb = packed['inputs'].permute(1, 2, 0).numpy()  # (H, W, 3) as loaded
    if getattr(model.data_preprocessor, 'to_rgb', False):
        rgb = rgb[..., ::-1]
    result = AttentionMaps(np.ascontiguousarray(rgb), classes,
                           out.logits[0].softmax(-1).float().cpu())
    if kept is not None:
        result.kept, result.class_weights, result.affinity = (
            kept.cpu(), weights.float().cpu(), affinity.float().cpu())
    for kind in MAP_KINDS:
        weights_k = found.get(kind)
        if weights_k is None:
            continue
        weights_k = weights_k.float().cpu()  # (C, K)
        result.maps[kind] = _patch_grid(weights_k, num_patches)
        if weights_k.shape[1] > num_patches:
            result.cls_weight[kind] = weights_k[:, :-num_patches].sum(1)
    return result


ROW_TITLES = {
    'CLIP': 'frozen CLIP\npatch-text similarity',
    'CTP': 'CTP\nattention over patches',
    'TFT': 'TFT\nre-pooling weights',
}


def plot_attention(maps: AttentionMaps, path: str,
                   classes: Optional[List[str]] = None,
                   title: str = '') -> None:
    """A PNG grid: one row per map kind, one panel per class (``classes``,
    default all), each map upsampled over the image; a last row of bars
    with TVP's kept classes and weights when the model has TVP."""
    from ..evaluation.plots import pyplot
    plt = pyplot()
    shown = classes or maps.classes
    index = [maps.classes.index(c) for c in shown]
    kinds = [k for k in MAP_KINDS if k in maps.maps]
    rows = len(kinds) + (maps.kept is not None)
    cols = len(shown) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.5 * rows),
                             squeeze=False)
    for r, kind in enumerate(kinds):
        up = maps.upsampled(kind)  # (C, H, W)
        axes[r, 0].imshow(maps.image)
        axes[r, 0].set_title('input' if r == 0 else '', fontsize=8)
        axes[r, 0].set_ylabel(ROW_TITLES[kind], fontsize=8)
        for j, c in enumerate(index, 1):
            ax = axes[r, j]
            ax.imshow(maps.image)
            ax.imshow(up[c].numpy(), cmap='jet', alpha=0.5,
                      vmin=0.0, vmax=float(up[c].max()))
            label = f'{maps.classes[c]}'
            if r == 0:
                label += f'\np={float(maps.scores[c]):.2f}'
            if kind in maps.cls_weight:
                label += f' (CLS {float(maps.cls_weight[kind][c]):.2f})'
            ax.set_title(label, fontsize=8)
    for ax in axes[:len(kinds)].flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if maps.kept is not None:
        bar_row = axes[len(kinds)]
        for ax in bar_row[1:]:
            ax.remove()
        ax = fig.add_subplot(rows, 1, rows)
        bar_row[0].remove()
        order = torch.argsort(maps.affinity, descending=True)
        order = order[:int(maps.kept.sum()) + 4].tolist()  # kept + 4 more
        bars = ax.bar(range(len(order)), maps.affinity[order].numpy(),
                      color=['tab:blue' if maps.kept[i] else 'lightgray'
                             for i in order])
        ax.bar_label(bars, [f'{float(maps.class_weights[i]):.2f}'
                            if maps.kept[i] else '' for i in order],
                     fontsize=7)
        ax.set_xticks(range(len(order)), [maps.classes[i] for i in order],
                      fontsize=8, rotation=20, ha='right')
        ax.set_ylabel('affinity', fontsize=8)
        ax.set_title(f'TVP: affinity of the image to each class; the '
                     f'{int(maps.kept.sum())} kept classes in blue, with '
                     'their renormalised weight; gray: dropped', fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
