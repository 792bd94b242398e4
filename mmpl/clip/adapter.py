"""The frozen CLIP with prompt slots: the one place that knows open_clip's
internals.

:class:`FrozenCLIP` builds the open_clip model, freezes it and exposes its
widths and the public encoders; the encoders themselves are the two towers
of :mod:`.towers` (embed -> one block loop -> head, deep prompts as
per-block hooks, the shared-prefix attention as a second block function):

* ``encode_text`` / ``encode_class_prompts`` -> :class:`~.towers.TextTower`
* ``encode_image`` -> :class:`~.towers.VisionTower` (ViT towers; other
  image towers encode prompt-free images through open_clip)

The open_clip model is held *outside* the module tree (not a child module):
it is frozen, stays in eval mode when the runner calls ``train()``, never
appears in ``parameters()`` or ``state_dict()`` (checkpoints stay small), and
still follows ``.to()``/``.cuda()``/``.half()`` through ``_apply``.
Features leave the towers in the CLIP's dtype.
"""
import json
from functools import lru_cache
from typing import Optional, Sequence, Tuple, Union

import open_clip
import torch
from torch import Tensor, nn

from .builder import build_open_clip, resolve_arch
from .errors import CLIPBuildError
from .towers import PromptTokens, TextTower, VisionTower


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
        cut_after_eot: always True (class tokens are cut after the last
            EOT); kept as the flag :func:`~mmpl.clip.build_class_tokens`
            reads.
    """
    cut_after_eot = True

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

    def encode_text(self, *args, **kwargs) -> Tensor:
        """(N, L, Dt) prompt embeddings, (N,) EOT positions -> (N, D):
        :meth:`~mmpl.clip.towers.TextTower.encode`."""
        return self.text.encode(*args, **kwargs)

    def encode_class_prompts(self, *args, **kwargs) -> Tensor:
        """(G, C, L, Dt) class prompts of G images -> (G, C, D):
        :meth:`~mmpl.clip.towers.TextTower.encode_class_prompts`."""
        return self.text.encode_class_prompts(*args, **kwargs)

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
