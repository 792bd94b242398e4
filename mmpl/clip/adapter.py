"""The frozen CLIP with prompt slots: the one place that knows open_clip's
internals.

``FrozenCLIP.encode_text`` / ``encode_image`` iterate the transformer blocks
themselves, so that prompts can be inserted at the input and replaced at any
layer (the MaPLe insertion rule):

* text: the shallow prompts are part of the input embeddings (the prompt
  module writes them right after SOS); deep text prompts for layer ``i > 0``
  replace the ``M`` tokens at positions ``1 .. M`` before block ``i``.
* image: visual prompts are appended after the patch tokens (after the
  positional embedding, before ``ln_pre``); deep visual prompts for layer
  ``i > 0`` replace the last ``Mv`` tokens before block ``i``. Prompt tokens
  are dropped before pooling.

Text sequences are grouped by EOT position and each group is cut after its
EOT: the causal mask means later tokens never reach the EOT feature, so the
result is identical. Class prompts that share a prefix (``[SOS] ctx``) run it
once per image (``encode_class_prompts``, :mod:`.prefix_attention`).

The open_clip model is held *outside* the module tree (not a child module):
it is frozen, stays in eval mode when the runner calls ``train()``, never
appears in ``parameters()`` or ``state_dict()`` (checkpoints stay small), and
still follows ``.to()``/``.cuda()``/``.half()`` through ``_apply``.
"""
from typing import Optional, Sequence, Tuple, Union

import open_clip
import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .builder import build_open_clip
from .errors import CLIPBuildError
from .prefix_attention import (block_after_prefix, prefix_keys_values,
                               supports_prefix_sharing)

# (M, D) shared by all sequences, or (N, M, D) one per sequence.
PromptTokens = Tensor


def _expand_prompts(prompts: PromptTokens, n: int) -> Tensor:
    """(M, D) | (N, M, D) -> (N, M, D)."""
    if prompts.dim() == 2:
        return prompts.unsqueeze(0).expand(n, -1, -1)
    if prompts.shape[0] != n:
        raise ValueError(f'prompts for {prompts.shape[0]} sequences given to '
                         f'a batch of {n}')
    return prompts


def _replace_deep(x: Tensor, prompts: PromptTokens) -> Tensor:
    """Deep prompts (M, Dt) | (N, M, Dt) replace positions 1 .. M of the
    (N, L, Dt) hidden states."""
    p = _expand_prompts(prompts, x.shape[0]).to(x.dtype)
    return torch.cat([x[:, :1], p, x[:, 1 + p.shape[1]:]], dim=1)


class _TextTower:
    """Resolves the text-tower parts of ``open_clip.CLIP`` and of
    ``CustomTextCLIP`` with an ``open_clip`` ``TextTransformer``."""

    def __init__(self, model: nn.Module):
        owner = model
        if not hasattr(model, 'token_embedding'):
            owner = getattr(model, 'text', None)
            if owner is None or not hasattr(owner, 'token_embedding'):
                raise CLIPBuildError(
                    f'{type(model).__name__} has no open_clip text '
                    'transformer (e.g. a Hugging Face text tower); prompt '
                    'learning needs a CLIP-style text encoder.')
        if getattr(owner, 'cls_emb', None) is not None:
            raise CLIPBuildError('text towers with a CLS embedding (CoCa) are '
                                 'not supported for prompt learning.')
        pool_type = getattr(owner, 'text_pool_type',
                            getattr(owner, 'pool_type', 'argmax'))
        if pool_type not in ('argmax', 'eos'):
            raise CLIPBuildError(
                f'text pooling {pool_type!r} is not supported; prompt '
                'learning needs EOT pooling (argmax or eos).')
        self.owner = owner
        self.pool_type = pool_type
        self.eos_token_id = getattr(owner, 'text_eos_id',
                                    getattr(owner, 'eos_id', None))
        self.causal = getattr(owner, 'attn_mask', None) is not None
        self.prefix_attention = self.causal and all(
            supports_prefix_sharing(b) for b in owner.transformer.resblocks)


class FrozenCLIP(nn.Module):
    """A frozen open_clip model whose encoders accept prompts.

    Args:
        arch: any open_clip architecture name (``ViT-B-16``, ``ViT-L-14``,
            ``mmpl-tiny-vit`` ...).
        pretrained: ``None`` (random), an open_clip tag (``openai``) or a
            local file path (offline).
        quick_gelu: activation of local weights (see ``builder``).
        cache_dir: open_clip download cache.
        grad_checkpointing: recompute text blocks in backward (large class
            counts: memory for compute).

    Attributes:
        cut_after_eot: cut text sequences after the batch's last EOT (exact
            under the causal mask). Only the benchmark's reference
            formulation turns it off, to run the full 77 tokens.
    """

    def __init__(self,
                 arch: str = 'ViT-B-16',
                 pretrained: Optional[str] = None,
                 quick_gelu: Optional[bool] = None,
                 cache_dir: Optional[str] = None,
                 grad_checkpointing: bool = False):
        super().__init__()
        self._attach(build_open_clip(arch, pretrained, quick_gelu, cache_dir),
                     arch, pretrained, grad_checkpointing)

    @classmethod
    def wrap(cls, model: nn.Module, arch: str) -> 'FrozenCLIP':
        """Use the prompt-slot encoders on an existing open_clip ``model``
        without freezing it (e.g. to pretrain a tiny CLIP with sequences cut
        after EOT). ``FrozenCLIP(...)`` is the frozen, normal path."""
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self._attach(model, arch, None, False)
        return self

    def _attach(self, model: nn.Module, arch: str, pretrained: Optional[str],
                grad_checkpointing: bool) -> None:
        # Outside the module tree on purpose (see the module docstring).
        self.__dict__['model'] = model
        self.arch = arch
        self.pretrained = pretrained
        self.grad_checkpointing = grad_checkpointing
        self.cut_after_eot = True
        # callables (event, sequences, length): 'pass' per encode call,
        # 'sequences' / 'prefix' per batched block input (the benchmark)
        self.text_observers: list = []
        self._text = _TextTower(model)
        self.tokenizer = open_clip.get_tokenizer(arch)
        visual = model.visual
        self.is_vit = hasattr(visual, 'conv1') and hasattr(
            visual, 'class_embedding')
        if self.is_vit and getattr(visual, 'attn_pool', None) is not None:
            self.is_vit = False  # attentional pooling: no token slots

    # ----------------------------------------------------------- module plumbing
    def _apply(self, fn, recurse=True):
        self.model._apply(fn)
        return super()._apply(fn, recurse)

    @property
    def device(self) -> torch.device:
        return self.model.logit_scale.device

    @property
    def dtype(self) -> torch.dtype:
        return self._text.owner.transformer.get_cast_dtype()

    # ------------------------------------------------------------------- widths
    @property
    def text_width(self) -> int:
        return self._text.owner.token_embedding.embedding_dim

    @property
    def text_layers(self) -> int:
        return len(self._text.owner.transformer.resblocks)

    @property
    def vision_width(self) -> Optional[int]:
        return self.model.visual.transformer.width if self.is_vit else None

    @property
    def vision_layers(self) -> Optional[int]:
        return (len(self.model.visual.transformer.resblocks)
                if self.is_vit else None)

    @property
    def embed_dim(self) -> int:
        return int(self.model.visual.output_dim)

    @property
    def context_length(self) -> int:
        return int(self._text.owner.positional_embedding.shape[0])

    @property
    def logit_scale(self) -> Tensor:
        """exp(logit_scale) of the pretrained model (100 for OpenAI CLIP)."""
        return self.model.logit_scale.exp()

    # ---------------------------------------------------------------- text side
    def tokenize(self, texts: Sequence[str]) -> Tensor:
        """Texts -> token ids (N, context_length) on the model's device."""
        return self.tokenizer(list(texts)).to(self.device)

    def eot_index(self, token_ids: Tensor) -> Tensor:
        """(N, L) token ids -> (N,) position of the pooled EOT token."""
        if self._text.pool_type == 'eos':
            return (token_ids == self._text.eos_token_id).int().argmax(-1)
        return token_ids.argmax(dim=-1)

    def embed_tokens(self, token_ids: Tensor) -> Tensor:
        """(N, L) ids -> (N, L, Dt) token embeddings (no graph is built for
        frozen weights)."""
        return self._text.owner.token_embedding(token_ids)

    def encode_text(self,
                    prompt_embeds: Tensor,
                    eot_index: Tensor,
                    deep_prompts: Optional[Sequence[PromptTokens]] = None,
                    chunk_size: Optional[int] = None) -> Tensor:
        """Encode prompt embeddings with the frozen text transformer.

        Sequences are grouped by EOT position and each group is cut after
        its own EOT (exact under the causal mask), so a batch of class names
        of different lengths costs the sum of their lengths, not N times the
        longest one.

        Args:
            prompt_embeds: (N, L, Dt) token embeddings with shallow prompts
                already in place (no positional embedding).
            eot_index: (N,) position of each sequence's EOT token.
            deep_prompts: prompts for layers 1 .. J-1, each (M, Dt) or
                (N, M, Dt); they replace positions 1 .. M before that block.
            chunk_size: encode at most this many sequences at once.

        Returns:
            (N, D) text features (not normalised).
        """
        self._observe('pass', prompt_embeds.shape[0], 0)
        return self._encode_flat(prompt_embeds, eot_index, deep_prompts,
                                 chunk_size)

    def _encode_flat(self, prompt_embeds: Tensor, eot_index: Tensor,
                     deep_prompts: Optional[Sequence[PromptTokens]],
                     chunk_size: Optional[int]) -> Tensor:
        n = prompt_embeds.shape[0]
        for p in deep_prompts or []:
            _expand_prompts(p, n)  # checks per-sequence prompt counts

        def encode(idx: Optional[Tensor]) -> Tensor:
            if idx is None:
                return self._encode_text(prompt_embeds, eot_index,
                                         deep_prompts)
            deep = None if deep_prompts is None else [
                p if p.dim() == 2 else p[idx] for p in deep_prompts]
            return self._encode_text(prompt_embeds[idx], eot_index[idx],
                                     deep)

        return self._encode_grouped(encode, eot_index, chunk_size)

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
        class sequence only runs its positions P .. EOT, attending to the
        prefix (:mod:`~mmpl.clip.prefix_attention`; exact under the causal
        mask). Otherwise all G*C sequences go through :meth:`encode_text`.

        Args:
            prompt_embeds: (G, C, L, Dt) prompt embeddings; with
                ``shared_prefix`` the prefix is read from class 0.
            eot_index: (C,) EOT position of each class prompt.
            shared_prefix: P, or 0 when the classes share no prefix.
            deep_prompts: per layer 1 .. J-1, (M, Dt) or (G, M, Dt).
            chunk_size: encode at most this many class sequences at once.

        Returns:
            (G, C, D) text features (not normalised).
        """
        groups, classes = prompt_embeds.shape[:2]
        self._observe('pass', groups * classes, 0)
        deep = list(deep_prompts or [])
        for p in deep:
            _expand_prompts(p, groups)
        if not self._can_share_prefix(eot_index, shared_prefix, deep):
            deep = [p if p.dim() == 2 else p.repeat_interleave(classes, 0)
                    for p in deep]
            return self._encode_flat(prompt_embeds.flatten(0, 1),
                                     eot_index.repeat(groups), deep or None,
                                     chunk_size).view(groups, classes, -1)
        keys_values = self._prefix_keys_values(
            prompt_embeds[:, 0, :shared_prefix], deep)
        suffix = prompt_embeds[:, :, shared_prefix:].flatten(0, 1)
        eot = eot_index.repeat(groups) - shared_prefix  # (G*C,) in suffix
        position = self._text.owner.positional_embedding.to(self.dtype)

        def encode(idx: Optional[Tensor]) -> Tensor:
            rows = idx if idx is not None else torch.arange(
                suffix.shape[0], device=suffix.device)
            ends = eot[rows]
            length = int(ends.max()) + 1
            x = suffix[rows, :length].to(self.dtype) + position[
                shared_prefix:shared_prefix + length]
            image = rows // classes
            self._observe('sequences', *x.shape[:2])
            blocks = self._text.owner.transformer.resblocks
            for block, (k, v) in zip(blocks, keys_values):
                if self.grad_checkpointing and torch.is_grad_enabled():
                    x = checkpoint(block_after_prefix, block, x, k[image],
                                   v[image], use_reentrant=False)
                else:
                    x = block_after_prefix(block, x, k[image], v[image])
            return self._text_head(x, ends)

        return self._encode_grouped(encode, eot, chunk_size).view(
            groups, classes, -1)

    def _can_share_prefix(self, eot_index: Tensor, prefix: int,
                          deep_prompts: list) -> bool:
        return (prefix > 0 and self.cut_after_eot and self._text.causal
                and self._text.prefix_attention
                and int(eot_index.min()) >= prefix
                and all(p.shape[-2] < prefix for p in deep_prompts)
                and len(deep_prompts) < self.text_layers)

    def _prefix_keys_values(self, prefix: Tensor,
                            deep_prompts: list) -> list:
        """(G, P, Dt) prefix embeddings -> per block the (G, H, P, Dt/H)
        keys and values of the prefix."""
        text = self._text.owner
        length = prefix.shape[1]
        x = prefix.to(self.dtype) + text.positional_embedding[:length].to(
            self.dtype)
        mask = text.attn_mask[:length, :length]
        blocks = text.transformer.resblocks
        self._observe('prefix', *x.shape[:2])
        keys_values = []
        for i, block in enumerate(blocks):
            if 0 < i <= len(deep_prompts):
                x = _replace_deep(x, deep_prompts[i - 1])
            keys_values.append(prefix_keys_values(block, x))
            if i < len(blocks) - 1:  # the last block's output is not needed
                x = block(x, attn_mask=mask)
        return keys_values

    def _encode_grouped(self, encode, eot_index: Tensor,
                        chunk_size: Optional[int]) -> Tensor:
        """``encode(idx)`` -> (n, D) on each group of sequences (``idx``
        None: all in one call); the results in input order."""
        groups = self._sequence_groups(eot_index, chunk_size)
        if groups is None:
            return encode(None)
        outs = [encode(idx) for idx in groups]
        order = torch.cat(groups)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=order.device)
        return torch.cat(outs)[inverse]

    def _sequence_groups(self, eot_index: Tensor,
                         chunk_size: Optional[int]) -> Optional[list]:
        """Index tensors of the sequences encoded together: equal EOT
        position (when cutting), at most ``chunk_size`` each; None when one
        call takes them all."""
        n = eot_index.shape[0]
        if not (self._text.causal and self.cut_after_eot):
            if chunk_size is None or chunk_size >= n:
                return None
            return list(torch.arange(n, device=eot_index.device).split(
                chunk_size))
        lengths, order = eot_index.sort(stable=True)
        counts = torch.unique_consecutive(lengths, return_counts=True)[1]
        if counts.numel() == 1 and (chunk_size is None or chunk_size >= n):
            return None
        groups = []
        for group in order.split(counts.tolist()):
            groups.extend(group.split(chunk_size) if chunk_size else [group])
        return groups

    def _encode_text(self, x: Tensor, eot_index: Tensor,
                     deep_prompts: Optional[Sequence[PromptTokens]]) -> Tensor:
        text = self._text.owner
        cast_dtype = self.dtype
        deep_prompts = list(deep_prompts or [])
        if self._text.causal and self.cut_after_eot:
            # Exact under the causal mask: nothing after the last EOT reaches
            # any EOT feature (deep prompts keep their positions 1 .. M).
            length = max([int(eot_index.max()) + 1] +
                         [1 + p.shape[-2] for p in deep_prompts])
            x = x[:, :length]
        length = x.shape[1]
        x = x.to(cast_dtype) + text.positional_embedding[:length].to(
            cast_dtype)
        attn_mask = text.attn_mask
        if attn_mask is not None:
            attn_mask = attn_mask[:length, :length]
        blocks = text.transformer.resblocks
        if len(deep_prompts) >= len(blocks):
            raise ValueError(f'{len(deep_prompts)} deep text prompt layers '
                             f'for a {len(blocks)}-layer text encoder')
        self._observe('sequences', *x.shape[:2])
        for i, block in enumerate(blocks):
            if 0 < i <= len(deep_prompts):
                x = _replace_deep(x, deep_prompts[i - 1])
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, None, None, attn_mask,
                               use_reentrant=False)
            else:
                x = block(x, attn_mask=attn_mask)
        return self._text_head(x, eot_index)

    def _observe(self, event: str, sequences: int, length: int) -> None:
        for observer in self.text_observers:
            observer(event, sequences, length)

    def _text_head(self, x: Tensor, eot_index: Tensor) -> Tensor:
        """(N, L, Dt) last-block output -> (N, D) features at the EOT."""
        text = self._text.owner
        x = x[torch.arange(x.shape[0], device=x.device), eot_index]
        x = text.ln_final(x)
        proj = text.text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj

    def encode_token_ids(self, token_ids: Tensor,
                         chunk_size: Optional[int] = None) -> Tensor:
        """Plain CLIP text features for token ids (N, L) -> (N, D)."""
        return self.encode_text(self.embed_tokens(token_ids),
                                self.eot_index(token_ids),
                                chunk_size=chunk_size)

    # --------------------------------------------------------------- image side
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
        if deep_visual_prompts and visual_prompts is None:
            raise ValueError('deep visual prompts need layer-0 visual prompts')
        visual = self.model.visual
        x = visual.conv1(images.to(self.dtype))  # (B, Dv, g, g)
        x = x.flatten(2).transpose(1, 2)  # (B, N, Dv)
        cls = visual.class_embedding.to(x.dtype).view(1, 1, -1)
        x = torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + visual.positional_embedding.to(x.dtype)
        n_tokens = x.shape[1]  # 1 + N
        n_prompts = 0
        if visual_prompts is not None:
            p = _expand_prompts(visual_prompts, x.shape[0]).to(x.dtype)
            n_prompts = p.shape[1]
            x = torch.cat([x, p], dim=1)
        x = visual.patch_dropout(x)
        x = visual.ln_pre(x)
        blocks = visual.transformer.resblocks
        deep = list(deep_visual_prompts or [])
        if len(deep) >= len(blocks):
            raise ValueError(f'{len(deep)} deep visual prompt layers for a '
                             f'{len(blocks)}-layer image encoder')
        for i, block in enumerate(blocks):
            if 0 < i <= len(deep):
                p = _expand_prompts(deep[i - 1], x.shape[0]).to(x.dtype)
                if p.shape[1] != n_prompts:
                    raise ValueError('deep visual prompts must keep the '
                                     f'layer-0 count {n_prompts}')
                x = torch.cat([x[:, :n_tokens], p], dim=1)
            x = block(x)
        x = x[:, :n_tokens]  # drop prompt tokens before pooling
        pooled, tokens = visual._pool(x)
        if visual.proj is not None:
            pooled = pooled @ visual.proj
        if not return_tokens:
            return pooled
        # Projected class+patch tokens, as the pooled feature is projected.
        all_tokens = visual.ln_post(x) if not visual.final_ln_after_pool \
            else x
        if visual.proj is not None:
            all_tokens = all_tokens @ visual.proj
        return pooled, all_tokens

    def extra_repr(self) -> str:
        return (f'arch={self.arch!r}, pretrained={self.pretrained!r}, '
                f'text_width={self.text_width}, embed_dim={self.embed_dim}')
