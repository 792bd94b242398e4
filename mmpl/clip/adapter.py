"""The frozen CLIP with prompt slots: the one place that knows open_clip's
internals.

:class:`FrozenCLIP` builds the open_clip model, freezes it and exposes its
widths and the public encoders over the two towers of :mod:`.towers`
(embed -> one block loop -> head):

* ``encode_text`` / ``encode_class_prompts`` / ``start_class_prompts``:
  a :class:`~.text_plan.TextEncodingPlan` (decided by ``text_planner``,
  :func:`~.text_plan.plan_text_encoding`) run on the
  :class:`~.towers.TextTower`; every plan is reported to the
  ``text_observers``;
* ``encode_image`` -> :class:`~.towers.VisionTower` (ViT towers; other
  image towers encode prompt-free images through open_clip)

The open_clip model is held *outside* the module tree (not a child module):
it is frozen, stays in eval mode when the runner calls ``train()``, never
appears in ``parameters()`` or ``state_dict()`` (checkpoints stay small), and
still follows ``.to()``/``.cuda()``/``.half()`` through ``_apply``.
Features leave the towers in the CLIP's dtype.
"""
import contextlib
import json
from functools import lru_cache
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import open_clip
import torch
from torch import Tensor, nn

from .builder import build_open_clip, resolve_arch
from .errors import CLIPBuildError
from .text_plan import (ClassPromptSteps, TextEncodingPlan, encode_with_plan,
                        plan_text_encoding)
from .towers import PromptTokens, TextTower, VisionTower

#: ``observer(plan)``: told of every text encoding before it runs
TextObserver = Callable[[TextEncodingPlan], None]


def shared_tokenizer(arch: str):
    """open_clip's tokenizer of ``arch``, built once per architecture
    config and shared (building the BPE tables costs ~0.2 s, most of a
    tiny CLIP's build; the tokenizer only maps texts to token ids)."""
    config = open_clip.get_model_config(arch)
    return _tokenizer(arch, json.dumps(config, sort_keys=True, default=str))


@lru_cache(maxsize=None)
def _tokenizer(arch: str, config: str):
    del config  # part of the cache key only (a re-registered arch name)
    return open_clip.get_tokenizer(arch)


class FrozenCLIP(nn.Module):
    """A frozen open_clip model whose encoders accept prompts.

    Args:
        arch: any open_clip architecture name (``ViT-B-16``, ``ViT-L-14``,
            ``mmpl-tiny-vit`` ...), or the path of an open_clip model
            config file (``.json``; :func:`~mmpl.clip.builder.resolve_arch`).
        pretrained: ``None`` (random), an open_clip tag (``openai``) or a
            local file path (offline).
        quick_gelu: activation of local weights (see ``builder``).
        cache_dir: open_clip download cache.
        grad_checkpointing: recompute text blocks in backward (large class
            counts: memory for compute).

    Attributes:
        text: the :class:`~mmpl.clip.towers.TextTower`.
        visual: the :class:`~mmpl.clip.towers.VisionTower`, or None when the
            image tower is not a ViT with token slots.
        text_planner: decides how each batch of text sequences is encoded,
            called with the arguments of
            :func:`~mmpl.clip.text_plan.plan_text_encoding` (the default);
            another planner changes only how the work is split (the speed
            benchmark's reference formulation runs whole 77-token
            sequences).
        text_observers: callables told of every
            :class:`~mmpl.clip.text_plan.TextEncodingPlan` before it runs
            (:meth:`observe_text`; the speed benchmark counts work so).
    """

    def __init__(self,
                 arch: str = 'ViT-B-16',
                 pretrained: Optional[str] = None,
                 quick_gelu: Optional[bool] = None,
                 cache_dir: Optional[str] = None,
                 grad_checkpointing: bool = False):
        super().__init__()
        arch = resolve_arch(arch)  # a model config file: its name
        model = build_open_clip(arch, pretrained, quick_gelu, cache_dir)
        # Outside the module tree on purpose (see the module docstring).
        self.__dict__['model'] = model
        self.arch = arch
        self.pretrained = pretrained
        self.text = TextTower(model, grad_checkpointing)
        self.visual = (VisionTower(model.visual)
                       if VisionTower.supports(model.visual) else None)
        self.tokenizer = shared_tokenizer(arch)
        self.text_planner: Callable[..., TextEncodingPlan] = \
            plan_text_encoding
        self.text_observers: List[TextObserver] = []

    # --------------------------------------------------------- module plumbing
    def _apply(self, fn, recurse=True):
        self.model._apply(fn)
        return super()._apply(fn, recurse)

    @property
    def device(self) -> torch.device:
        return self.model.logit_scale.device

    @property
    def dtype(self) -> torch.dtype:
        return self.text.dtype

    @property
    def grad_checkpointing(self) -> bool:
        """Recompute the text blocks in backward."""
        return self.text.grad_checkpointing

    @grad_checkpointing.setter
    def grad_checkpointing(self, value: bool) -> None:
        self.text.grad_checkpointing = bool(value)

    # ------------------------------------------------------------------ widths
    @property
    def is_vit(self) -> bool:
        return self.visual is not None

    @property
    def text_width(self) -> int:
        return self.text.width

    @property
    def text_layers(self) -> int:
        return self.text.layers

    @property
    def vision_width(self) -> Optional[int]:
        return self.visual.width if self.is_vit else None

    @property
    def vision_layers(self) -> Optional[int]:
        return self.visual.layers if self.is_vit else None

    @property
    def embed_dim(self) -> int:
        return int(self.model.visual.output_dim)

    @property
    def context_length(self) -> int:
        return self.text.context_length

    @property
    def logit_scale(self) -> Tensor:
        """exp(logit_scale) of the pretrained model (100 for OpenAI CLIP)."""
        return self.model.logit_scale.exp()

    # --------------------------------------------------------------- text side
    def tokenize(self, texts: Sequence[str]) -> Tensor:
        """Texts -> token ids (N, context_length) on the model's device."""
        return self.tokenizer(list(texts)).to(self.device)

    def eot_index(self, token_ids: Tensor) -> Tensor:
        """(N, L) token ids -> (N,) position of the pooled EOT token."""
        return self.text.eot_index(token_ids)

    def embed_tokens(self, token_ids: Tensor) -> Tensor:
        """(N, L) ids -> (N, L, Dt) token embeddings (no graph is built for
        frozen weights)."""
        return self.text.embed_tokens(token_ids)

    @contextlib.contextmanager
    def observe_text(self, observer: TextObserver) -> Iterator[None]:
        """Tell ``observer(plan)`` of every text encoding while the context
        is open."""
        self.text_observers.append(observer)
        try:
            yield
        finally:
            self.text_observers.remove(observer)

    def _plan_text(self, eot_index: Tensor, classes: int, length: int,
                   shared_prefix: int = 0,
                   deep_prompts: Sequence[PromptTokens] = (),
                   chunk_size: Optional[int] = None,
                   stepwise: bool = False) -> TextEncodingPlan:
        """The plan of N = G*C sequences ((N,) ``eot_index``), reported to
        the observers."""
        plan = self.text_planner(
            self.text, eot_index, classes=classes,
            shared_prefix=shared_prefix,
            deep_lengths=[p.shape[-2] for p in deep_prompts],
            chunk_size=chunk_size, length=length, stepwise=stepwise)
        for observer in self.text_observers:
            observer(plan)
        return plan

    def encode_text(self,
                    prompt_embeds: Tensor,
                    eot_index: Tensor,
                    deep_prompts: Optional[Sequence[PromptTokens]] = None,
                    chunk_size: Optional[int] = None) -> Tensor:
        """Encode N text sequences, each cut after its EOT (exact under the
        causal mask), in length groups.

        Args:
            prompt_embeds: (N, L, Dt) token embeddings with the shallow
                prompts in place (no positional embedding).
            eot_index: (N,) position of each sequence's EOT token.
            deep_prompts: per layer 1 .. J-1, (M, Dt) or (N, M, Dt); they
                replace positions 1 .. M before that block.
            chunk_size: at most this many sequences per block call (memory).

        Returns:
            (N, D) text features (not normalised), in the CLIP's dtype.
        """
        n, length = prompt_embeds.shape[:2]
        deep = self.text.checked_deep_prompts(deep_prompts, n)
        plan = self._plan_text(eot_index, 1, length, deep_prompts=deep,
                               chunk_size=chunk_size)
        return encode_with_plan(self.text, plan, prompt_embeds, deep)

    def encode_class_prompts(
            self,
            prompt_embeds: Tensor,
            eot_index: Tensor,
            shared_prefix: int = 0,
            deep_prompts: Optional[Sequence[PromptTokens]] = None,
            chunk_size: Optional[int] = None) -> Tensor:
        """Encode the class prompts of G images (or G = 1 for all images).

        When the first ``shared_prefix`` = P positions are the same for every
        class of an image (``[SOS] ctx``), they run once per image and each
        class sequence runs only its positions P .. EOT, attending to the
        prefix (:mod:`~mmpl.clip.text_plan`; exact under the causal mask).

        Args:
            prompt_embeds: (G, C, L, Dt) prompt embeddings; with
                ``shared_prefix`` the prefix is read from class 0.
            eot_index: (C,) EOT position of each class prompt.
            shared_prefix: P, or 0 when the classes share no prefix.
            deep_prompts: per layer 1 .. J-1, (M, Dt) or (G, M, Dt).
            chunk_size: at most this many class sequences per block call.

        Returns:
            (G, C, D) text features (not normalised).
        """
        groups, classes, length = prompt_embeds.shape[:3]
        deep = self.text.checked_deep_prompts(deep_prompts, groups)
        plan = self._plan_text(eot_index.repeat(groups), classes, length,
                               shared_prefix, deep, chunk_size)
        return encode_with_plan(self.text, plan, prompt_embeds.flatten(0, 1),
                                deep).view(groups, classes, -1)

    def start_class_prompts(self,
                            prompt_embeds: Tensor,
                            eot_index: Tensor,
                            shared_prefix: int = 0,
                            chunk_size: Optional[int] = None
                            ) -> ClassPromptSteps:
        """The class prompts of G images, to be advanced one block at a
        time by the caller (interleaved towers: DGPrompt), planned as
        :meth:`encode_class_prompts` with one run.

        Args:
            prompt_embeds: (G, C, L, Dt) prompt embeddings (layer-0 prompts
                in place).
            eot_index: (C,) EOT positions.
            shared_prefix: P, or 0; the caller's deep prompts stay inside
                it.
            chunk_size: at most this many class sequences per block call.

        Returns:
            a :class:`~mmpl.clip.text_plan.ClassPromptSteps`: ``step(i,
            prompts)``, ``eot_states()`` (G, C, Dt), ``features()``
            (G, C, D).
        """
        groups, classes, length = prompt_embeds.shape[:3]
        plan = self._plan_text(eot_index.repeat(groups), classes, length,
                               shared_prefix, chunk_size=chunk_size,
                               stepwise=True)
        return ClassPromptSteps(self.text, plan, prompt_embeds)

    def encode_token_ids(self, token_ids: Tensor,
                         chunk_size: Optional[int] = None) -> Tensor:
        """Plain CLIP text features for token ids (N, L) -> (N, D)."""
        return self.encode_text(self.embed_tokens(token_ids),
                                self.eot_index(token_ids),
                                chunk_size=chunk_size)

    # -------------------------------------------------------------- image side
    def _require_vit(self, what: str) -> None:
        if not self.is_vit:
            raise CLIPBuildError(
                f'{what} needs a ViT image tower with class/patch tokens; '
                f'{self.arch} has {type(self.model.visual).__name__}.')

    def encode_image(
        self,
        images: Tensor,
        visual_prompts: Optional[PromptTokens] = None,
        deep_visual_prompts: Optional[Sequence[PromptTokens]] = None,
        return_tokens: bool = False
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Encode images with optional visual prompts.

        Args:
            images: (B, 3, H, W) normalised images.
            visual_prompts: (Mv, Dv) or (B, Mv, Dv) tokens appended after
                the patch tokens.
            deep_visual_prompts: prompts for layers 1 .. J-1, each (Mv, Dv)
                or (B, Mv, Dv), replacing the last Mv tokens before that
                block (requires ``visual_prompts``).
            return_tokens: also return the projected class+patch tokens.

        Returns:
            (B, D) image features, and with ``return_tokens`` the
            (B, 1+N, D) projected tokens (class token first).
        """
        if (visual_prompts is None and deep_visual_prompts is None
                and not return_tokens and not self.is_vit):
            return self.model.encode_image(images)
        self._require_vit('image tokens or visual prompts')
        return self.visual.encode(images, visual_prompts, deep_visual_prompts,
                                  return_tokens)

    def encode_image_dense(
        self,
        images: Tensor,
        visual_prompts: Optional[PromptTokens] = None,
        deep_visual_prompts: Optional[Sequence[PromptTokens]] = None
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """(B, D) image features, (B, 1+N, D) projected final tokens and
        (B, 1+N, D) value-path tokens of the last block (MaskCLIP's dense
        readout); arguments as :meth:`encode_image`, see
        :meth:`~mmpl.clip.towers.VisionTower.encode_dense`."""
        self._require_vit('dense image features')
        return self.visual.encode_dense(images, visual_prompts,
                                        deep_visual_prompts)

    def extra_repr(self) -> str:
        return (f'arch={self.arch!r}, pretrained={self.pretrained!r}, '
                f'text_width={self.text_width}, embed_dim={self.embed_dim}')
