"""DGPrompt: dual-guidance, layer-wise generation of text and visual prompts.

Reconstruction of Neural Networks 2025, "DGPrompt: Dual-guidance prompts
generation for vision-language models". The abstract says: visual and
textual prompts are generated with mutual guidance, layer by layer
(hierarchical context), so that image and text embedding extraction guide
each other, and a retention module restrains prompt tuning (reported HM
79.54, +0.99 over MaPLe). The paper's equations are not available to the
project; this is its reading (DESIGN.md, "DGPrompt"):

The two towers run block by block, interleaved. Both carry prompts in the
layers l < J (M text tokens right after SOS, Mv visual tokens after the
patch tokens; the MaPLe layout of :func:`~mmpl.clip.build_class_tokens`,
the ``ctx_init`` words beyond the M tokens stay frozen). Layer 0 uses the
base prompts (``ctx``, ``visual[0]``; CoCoOp-style per-image shifts from
``f0`` with ``image_conditioned``). For l = 1 .. J-1, image b::

    T_l(b) = Tbase_l + G_vt_l(image tower's layer-l input states of image b
                              at its CLS and prompt tokens) + alpha T_{l-1}(b)
    V_l(b) = Vbase_l + G_tv_l(text tower's layer-l input states of image b's
                              class prompts at their EOT, over the class
                              set [mean | zero-shot affinity])
             + alpha V_{l-1}(b)

``G``: :mod:`.guidance` (linear [default] or cross-attention). So image
content reaches the text prompts and class-set text content reaches the
visual prompts: the text features are per image (B, C, D) and the image
features depend on the class set. The text prompts stay inside the
``[SOS] ctx`` prefix: each image's prefix runs once per layer and the class
positions attend to it (``FrozenCLIP.start_class_prompts``, a one-run
:mod:`~mmpl.clip.text_plan`), each class cut after its own EOT: per layer one
batched block call for the image tower, and for the text one block over
the packed rows of the prefixes and of every EOT-length group of classes
(all images together; one matmul per projection, attention per group), no
loop over images or classes.

DGPrompt extends :class:`~mmpl.prompts.IVLP` (the independent deep prompts:
its ``ctx``, ``deep_text`` and ``visual`` are Tbase and Vbase);
``guidance='none'`` is IVLP plus the ``alpha`` residual, encoded through the
ordinary encoders (shared by the batch, cached in evaluation).
"""
from typing import List, Optional, Tuple

import torch
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..clip import ClassTokens
from ..clip.towers import replace_visual_slots
from ..structures import JointFeatures
from ..utils.checks import check_choice
from .base import FrozenImageFeatures, Needs
from .context import insert_context, shared_prefix_length
from .guidance import GUIDANCE_TYPES, build_guidance, zero_shot_affinity
from .ivlp import IVLP

POOLINGS = ('mean', 'affinity')


@MODELS.register_module()
class DGPrompt(IVLP):
    """Dual-guidance deep prompt generation (reconstruction).

    Args:
        clip, n_ctx, n_visual, depth, ctx_init, image_conditioned,
            depth_overflow: as :class:`~mmpl.prompts.IVLP` (M = ``n_ctx``
            is 2 here [2], the rest of 'a photo of a' stays frozen).
        guidance: 'linear' [default], 'cross_attention' or 'none'
            (independent deep prompts, IVLP).
        guidance_heads: heads of the cross-attention guidance [8].
        alpha: weight of the residual from the previous layer's generated
            prompts (hierarchical context) [0.1].
        pooling: how the text -> image guidance pools the class set:
            'mean' [default] or 'affinity' (weighted by the frozen
            zero-shot prediction of the image, softmax(s cos(f0, t0))).
    """

    def __init__(self,
                 clip,
                 n_ctx: int = 2,
                 n_visual: Optional[int] = None,
                 depth: int = 9,
                 ctx_init: Optional[str] = 'a photo of a',
                 guidance: str = 'linear',
                 guidance_heads: int = 8,
                 alpha: float = 0.1,
                 pooling: str = 'mean',
                 image_conditioned: bool = False,
                 depth_overflow: str = 'clip',
                 init_cfg=None):
        check_choice('guidance', guidance, GUIDANCE_TYPES)
        check_choice('pooling', pooling, POOLINGS)
        super().__init__(clip, n_ctx, n_visual, depth, ctx_init,
                         image_conditioned, depth_overflow, init_cfg)
        self.guidance = guidance
        self.alpha = float(alpha)
        self.pooling = pooling
        dt, dv, device = clip.text_width, clip.vision_width, clip.device
        if guidance == 'none':
            self.text_to_visual = self.visual_to_text = None
        else:  # one map per layer 1 .. J-1 and direction
            self.text_to_visual = nn.ModuleList([
                build_guidance(guidance, dt, dv, self.n_visual,
                               guidance_heads)
                for _ in range(self.depth - 1)
            ]).to(device)
            self.visual_to_text = nn.ModuleList([
                build_guidance(guidance, dv, dt, n_ctx, guidance_heads)
                for _ in range(self.depth - 1)
            ]).to(device)

    @property
    def encodes_jointly(self) -> bool:
        """The classifier calls :meth:`encode_jointly` (both towers,
        interleaved) instead of ``forward`` + the two encoders."""
        return self.guidance != 'none'

    @property
    def needs(self) -> Needs:
        affinity = self.pooling == 'affinity' and self.encodes_jointly
        return Needs(frozen_image=self.per_image or affinity,
                     anchors=affinity)

    def generate(self, image: Optional[FrozenImageFeatures] = None
                 ) -> Tuple[List[Tensor], List[Tensor]]:
        """The prompts of every layer without guidance (``guidance='none'``:
        IVLP's, plus the ``alpha`` residual)."""
        if self.encodes_jointly:
            raise RuntimeError('DGPrompt with guidance generates its prompts '
                               'from the towers\' states: use encode_jointly')
        return super().generate(image)

    # ---------------------------------------------- the interleaved towers
    def encode_jointly(self,
                       clip,
                       class_tokens: ClassTokens,
                       images: Tensor,
                       image: Optional[FrozenImageFeatures] = None,
                       anchors: Optional[Tensor] = None,
                       chunk_size: Optional[int] = None,
                       return_tokens: bool = False) -> JointFeatures:
        """Both towers, block by block, each layer's prompts generated from
        the other tower's states of that layer (module docstring).

        Args:
            clip: the frozen CLIP.
            class_tokens: the class set's token layout.
            images: (B, 3, H, W) normalised images.
            image: the frozen image pass (``image_conditioned`` or
                ``pooling='affinity'``).
            anchors: (C, D) class anchors (``pooling='affinity'``).
            chunk_size: at most this many class sequences per block call.
            return_tokens: also return the (B, 1+N, D) image tokens.

        Returns:
            :class:`~mmpl.structures.JointFeatures` with (B, D) image and
            (B, C, D) text features.
        """
        text_tower, vision = clip.text, clip.visual
        batch = images.shape[0]
        text, visual = self._layer0(image)
        ctx = text.unsqueeze(1) if text.dim() == 3 else text.expand(
            batch, 1, -1, -1)  # (B, 1, M, Dt)
        embeds = insert_context(ctx, class_tokens.prefix,
                                class_tokens.suffix)  # (B, C, L, Dt)
        steps = clip.start_class_prompts(
            embeds, class_tokens.eot_index,
            shared_prefix_length(ctx, class_tokens.n_frozen_context),
            chunk_size)
        v = vision.embed(images, visual)  # (B, 1+N+Mv, Dv)
        weights = None  # (B, C) over the class set; None = mean
        if self.pooling == 'affinity' and self.encodes_jointly:
            if image is None or anchors is None:
                raise ValueError("DGPrompt(pooling='affinity') needs the "
                                 'frozen image features and the anchors')
            weights = zero_shot_affinity(image.global_feature, anchors,
                                         clip.logit_scale)
        texts, visuals = [text], [visual]
        mv = self.n_visual
        for layer in range(max(text_tower.layers, vision.layers)):
            text = visual = None
            if 1 <= layer < self.depth:
                text, visual = self._guided(layer, texts[-1], visuals[-1],
                                            steps.eot_states(), v, weights)
                texts.append(text)
                visuals.append(visual)
            if layer < text_tower.layers:
                steps.step(layer, text)
            if layer < vision.layers:
                if visual is not None:
                    v = replace_visual_slots(
                        v, visual.expand(batch, -1, -1).to(v.dtype))
                v = vision.run(v, layer, layer + 1)
        out = vision.head(v, mv, return_tokens)
        f, tokens = out if return_tokens else (out, None)
        return JointFeatures(image_features=f, text_features=steps.features(),
                             image_tokens=tokens, text_prompts=texts,
                             visual_prompts=visuals)

    def _guided(self, layer: int, prev_text: Tensor, prev_visual: Tensor,
                eot_states: Tensor, visual_states: Tensor,
                weights: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """Layer ``layer``'s prompts from the towers' input states of it.

        Args:
            prev_text, prev_visual: layer l-1's generated prompts.
            eot_states: (B, C, Dt) text states at the EOT positions.
            visual_states: (B, 1+N+Mv, Dv) image states.
            weights: (B, C) class-set pooling weights, or None (mean).

        Returns:
            (B, M, Dt) text and (B, Mv, Dv) visual prompts (shared shapes
            (M, Dt) / (Mv, Dv) without guidance and per-image inputs).
        """
        text = self.deep_text[layer - 1]
        visual = self.visual[layer]
        if self.encodes_jointly:
            source = torch.cat([visual_states[:, :1],
                                visual_states[:, -self.n_visual:]], dim=1)
            text = text + self.visual_to_text[layer - 1](source)
            visual = visual + self.text_to_visual[layer - 1](eot_states,
                                                             weights)
        if self.alpha:
            text = text + self.alpha * prev_text
            visual = visual + self.alpha * prev_visual
        return text, visual
