"""The two towers of an open_clip CLIP, each with one block loop.

Each tower has open_clip's phases (``_embeds`` -> ``transformer`` ->
``_pool``) as public steps, so that a caller can run them separately:

* ``embed``: token or patch embeddings plus positions (the vision tower also
  appends the visual prompts and applies ``ln_pre``);
* ``run(x, start, stop, before_block, block_fn)``: blocks ``start ..
  stop-1``, the tower's only loop over blocks. ``before_block(i, x) -> x``
  edits the hidden states before block ``i`` (deep prompts,
  :func:`text_deep_prompts` / :func:`visual_deep_prompts`); ``block_fn(i, x)
  -> x`` replaces the block call (the packed rows and the shared-prefix
  attention of :mod:`.text_plan`). Gradient checkpointing is decided here,
  once. ``run(x, i, i + 1)`` steps one block, so two towers can be advanced
  block by block, interleaved (DGPrompt's mutual guidance);
* ``head``: pooling and projection (text: the EOT token; image: the class
  token, prompt tokens dropped first).

Prompt slots (the MaPLe insertion rule):

* text: the shallow prompts are part of the input embeddings (the prompt
  module writes them right after SOS); deep text prompts for layer ``i > 0``
  replace the ``M`` tokens at positions ``1 .. M`` before block ``i``.
* image: visual prompts are appended after the patch tokens (after the
  positional embedding and patch dropout, before ``ln_pre``); deep visual
  prompts for layer ``i > 0`` replace the last ``Mv`` tokens before block
  ``i``. Prompt tokens are dropped before pooling.

How a batch of text sequences is split over these phases (length groups cut
after their EOT, a shared prefix run once, packed rows, chunks) is decided
by :mod:`.text_plan`, not here.

Towers hold references to the open_clip modules; they are plain objects, not
``nn.Module`` children, so that whoever owns the model decides what is
trainable and what is saved (:class:`~mmpl.clip.FrozenCLIP`: nothing).
Hidden states stay in the tower's dtype (the CLIP's weights).
"""
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .errors import CLIPBuildError
from .prefix_attention import block_batch_first, supports_prefix_sharing

# (M, D) shared by all sequences, or (N, M, D) one per sequence.
PromptTokens = Tensor
#: ``before_block(i, x) -> x``: edits the (N, L, D) input of block ``i``.
BeforeBlock = Callable[[int, Tensor], Tensor]
#: ``block_fn(i, x) -> x``: runs block ``i`` on its (N, L, D) input.
BlockFn = Callable[[int, Tensor], Tensor]


def expand_prompts(prompts: PromptTokens, n: int) -> Tensor:
    """(M, D) | (N, M, D) -> (N, M, D)."""
    if prompts.dim() == 2:
        return prompts.unsqueeze(0).expand(n, -1, -1)
    if prompts.shape[0] != n:
        raise ValueError(f'prompts for {prompts.shape[0]} sequences given to '
                         f'a batch of {n}')
    return prompts


def replace_text_slots(x: Tensor, prompts: Tensor) -> Tensor:
    """(N, L, Dt) hidden states with positions 1 .. M replaced by the
    (N, M, Dt) prompts (the text slots right after SOS)."""
    return torch.cat([x[:, :1], prompts, x[:, 1 + prompts.shape[1]:]], dim=1)


def replace_visual_slots(x: Tensor, prompts: Tensor) -> Tensor:
    """(B, 1+N+Mv, Dv) hidden states with the last Mv tokens replaced by the
    (B, Mv, Dv) prompts."""
    return torch.cat([x[:, :x.shape[1] - prompts.shape[1]], prompts], dim=1)


def _deep_prompt_hook(deep_prompts: Optional[Sequence[PromptTokens]],
                      replace: Callable[[Tensor, Tensor], Tensor]
                      ) -> Optional[BeforeBlock]:
    """``before_block`` that puts ``deep_prompts[i - 1]`` (expanded to
    (N, M, D)) into the input of block ``i`` = 1 .. J-1 with
    ``replace(x, prompts)``; None without deep prompts."""
    deep = list(deep_prompts or [])
    if not deep:
        return None

    def before_block(i: int, x: Tensor) -> Tensor:
        if not 0 < i <= len(deep):
            return x
        return replace(x, expand_prompts(deep[i - 1], x.shape[0]).to(x.dtype))

    return before_block


def text_deep_prompts(
        deep_prompts: Optional[Sequence[PromptTokens]]
) -> Optional[BeforeBlock]:
    """The ``before_block`` hook of deep text prompts.

    Args:
        deep_prompts: per layer 1 .. J-1, (M, Dt) or (N, M, Dt); they
            replace positions 1 .. M of the (N, L, Dt) input of that block.
    """

    return _deep_prompt_hook(deep_prompts, replace_text_slots)


def visual_deep_prompts(
        deep_prompts: Optional[Sequence[PromptTokens]],
        num_prompts: int) -> Optional[BeforeBlock]:
    """The ``before_block`` hook of deep visual prompts.

    Args:
        deep_prompts: per layer 1 .. J-1, (Mv, Dv) or (B, Mv, Dv); they
            replace the last ``num_prompts`` = Mv tokens of the
            (B, 1+N+Mv, Dv) input of that block.
        num_prompts: Mv, the layer-0 prompt count (deep prompts keep it).
    """

    def replace(x: Tensor, p: Tensor) -> Tensor:
        if p.shape[1] != num_prompts:
            raise ValueError('deep visual prompts must keep the layer-0 '
                             f'count {num_prompts}')
        return replace_visual_slots(x, p)

    return _deep_prompt_hook(deep_prompts, replace)


class _BlockLoop:
    """The block loop shared by both towers."""

    def __init__(self, blocks: nn.ModuleList, grad_checkpointing: bool):
        self.blocks = blocks
        #: recompute blocks in backward (memory for compute)
        self.grad_checkpointing = grad_checkpointing
        #: open_clip blocks whose attention can run with contiguous
        #: projections (:func:`~.prefix_attention.block_batch_first`)
        self.contiguous_blocks = all(
            supports_prefix_sharing(b) for b in blocks)

    @property
    def layers(self) -> int:
        return len(self.blocks)

    def _forward_block(self, i: int, x: Tensor,
                       attn_mask: Optional[Tensor] = None) -> Tensor:
        """Block ``i``; with autograd on (training), through
        :func:`~.prefix_attention.block_batch_first`: the attention module's
        own training path runs its projections as a broadcast bmm over a
        strided input. Without autograd its inference fast path is used."""
        if self.contiguous_blocks and torch.is_grad_enabled():
            return block_batch_first(self.blocks[i], x, attn_mask)
        if attn_mask is None:
            return self.blocks[i](x)
        return self.blocks[i](x, attn_mask=attn_mask)

    def block(self, i: int, x: Tensor) -> Tensor:
        """Block ``i`` on its (N, L, D) input -> (N, L, D)."""
        return self._forward_block(i, x)

    def run(self,
            x: Tensor,
            start: int = 0,
            stop: Optional[int] = None,
            before_block: Optional[BeforeBlock] = None,
            block_fn: Optional[BlockFn] = None) -> Tensor:
        """Blocks ``start .. stop-1`` on the hidden states ``x``.

        Args:
            x: (N, L, D) input of block ``start`` (or the (T, D) packed
                rows of a ``block_fn`` that takes them).
            start, stop: the block range [0, all blocks).
            before_block: ``(i, x) -> x`` applied before block ``i``.
            block_fn: ``(i, x) -> x`` instead of :meth:`block`.

        Returns:
            (N, L', D) output of block ``stop - 1`` (L' = L unless a hook
            changes the length).
        """
        stop = self.layers if stop is None else stop
        block_fn = block_fn or self.block
        recompute = self.grad_checkpointing and torch.is_grad_enabled()
        for i in range(start, stop):
            if before_block is not None:
                x = before_block(i, x)
            if recompute:
                x = checkpoint(block_fn, i, x, use_reentrant=False)
            else:
                x = block_fn(i, x)
        return x


class TextTower(_BlockLoop):
    """The text tower of ``open_clip.CLIP``, or of ``CustomTextCLIP`` with an
    open_clip ``TextTransformer``: embed -> run -> head.

    Args:
        model: the open_clip model.
        grad_checkpointing: recompute the blocks in backward.
    """

    def __init__(self, model: nn.Module, grad_checkpointing: bool = False):
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
        super().__init__(owner.transformer.resblocks, grad_checkpointing)
        self.owner = owner
        self.pool_type = pool_type
        self.eos_token_id = getattr(owner, 'text_eos_id',
                                    getattr(owner, 'eos_id', None))
        #: causal mask: tokens after a sequence's EOT never reach its feature
        self.causal = getattr(owner, 'attn_mask', None) is not None
        #: every block has the layout of the shared-prefix attention
        self.prefix_sharing = self.causal and self.contiguous_blocks

    @property
    def width(self) -> int:
        return self.owner.token_embedding.embedding_dim

    @property
    def context_length(self) -> int:
        return int(self.owner.positional_embedding.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        return self.owner.transformer.get_cast_dtype()

    def eot_index(self, token_ids: Tensor) -> Tensor:
        """(N, L) token ids -> (N,) position of the pooled EOT token."""
        if self.pool_type == 'eos':
            return (token_ids == self.eos_token_id).int().argmax(-1)
        return token_ids.argmax(dim=-1)

    def embed_tokens(self, token_ids: Tensor) -> Tensor:
        """(N, L) ids -> (N, L, Dt) token embeddings."""
        return self.owner.token_embedding(token_ids)

    def embed(self, x: Tensor, start: int = 0) -> Tensor:
        """(N, L, Dt) token embeddings of positions ``start .. start+L-1``
        -> block input (positional embedding added, in the tower's dtype)."""
        dtype = self.dtype
        position = self.owner.positional_embedding[start:start + x.shape[1]]
        return x.to(dtype) + position.to(dtype)

    def attn_mask(self, length: int) -> Optional[Tensor]:
        """(L, L) causal mask of an L-token sequence, or None."""
        mask = self.owner.attn_mask
        return None if mask is None else mask[:length, :length]

    def block(self, i: int, x: Tensor) -> Tensor:
        """Block ``i`` on (N, L, Dt) whole sequences (the causal mask of
        their length) -> (N, L, Dt)."""
        return self._forward_block(i, x, self.attn_mask(x.shape[1]))

    def project(self, x: Tensor) -> Tensor:
        """(N, Dt) last-block states at the EOT -> (N, D) features."""
        x = self.owner.ln_final(x)
        proj = self.owner.text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj

    def head(self, x: Tensor, eot_index: Tensor) -> Tensor:
        """(N, L, Dt) last-block output, (N,) EOT positions -> (N, D)
        features at the EOT."""
        return self.project(
            x[torch.arange(x.shape[0], device=x.device), eot_index])

    def checked_deep_prompts(self,
                             deep_prompts: Optional[Sequence[PromptTokens]],
                             n: int) -> List[PromptTokens]:
        """Deep text prompts of N sequences as a list: fewer than the
        tower's layers, each (M, Dt) or (N, M, Dt)."""
        deep = list(deep_prompts or [])
        if len(deep) >= self.layers:
            raise ValueError(f'{len(deep)} deep text prompt layers for a '
                             f'{self.layers}-layer text encoder')
        for p in deep:
            expand_prompts(p, n)  # checks the count
        return deep

    def encode_batch(self,
                     x: Tensor,
                     eot_index: Tensor,
                     deep_prompts: Optional[Sequence[PromptTokens]] = None
                     ) -> Tensor:
        """embed -> run -> head on one batch as given: open_clip's text
        forward on embeddings, every sequence at length L. (Prompt learning
        encodes through :class:`~mmpl.clip.FrozenCLIP`, whose plan cuts and
        groups the sequences.)

        Args:
            x: (N, L, Dt) token embeddings with shallow prompts in place.
            eot_index: (N,) EOT positions.
            deep_prompts: per layer 1 .. J-1, (M, Dt) or (N, M, Dt).

        Returns:
            (N, D) text features (not normalised).
        """
        deep = self.checked_deep_prompts(deep_prompts, x.shape[0])
        x = self.run(self.embed(x), before_block=text_deep_prompts(deep))
        return self.head(x, eot_index)


class VisionTower(_BlockLoop):
    """The ViT image tower of an open_clip model (class + patch tokens).

    Args:
        visual: the open_clip ``VisionTransformer`` (``model.visual``).
        grad_checkpointing: recompute the blocks in backward.
    """

    def __init__(self, visual: nn.Module, grad_checkpointing: bool = False):
        if not self.supports(visual):
            raise CLIPBuildError(
                f'{type(visual).__name__} is not a ViT with class/patch '
                'token slots.')
        super().__init__(visual.transformer.resblocks, grad_checkpointing)
        self.visual = visual

    @staticmethod
    def supports(visual: nn.Module) -> bool:
        """A ViT with a class token and no attentional pooling."""
        return (hasattr(visual, 'conv1') and hasattr(visual, 'class_embedding')
                and getattr(visual, 'attn_pool', None) is None)

    @property
    def width(self) -> int:
        return self.visual.transformer.width

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.conv1.weight.dtype

    # --------------------------------------------------------------- phases
    def embed(self, images: Tensor,
              prompts: Optional[PromptTokens] = None) -> Tensor:
        """Patch embedding, class token, positions, patch dropout, the
        visual prompts appended, ``ln_pre``.

        Args:
            images: (B, 3, H, W) normalised images.
            prompts: (Mv, Dv) or (B, Mv, Dv) visual prompt tokens.

        Returns:
            (B, 1+N[+Mv], Dv) input of block 0.
        """
        visual = self.visual
        x = visual.conv1(images.to(self.dtype))  # (B, Dv, g, g)
        x = x.flatten(2).transpose(1, 2)  # (B, N, Dv)
        cls = visual.class_embedding.to(x.dtype).view(1, 1, -1)
        x = torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + visual.positional_embedding.to(x.dtype)
        x = visual.patch_dropout(x)  # on image tokens only
        if prompts is not None:
            p = expand_prompts(prompts, x.shape[0]).to(x.dtype)
            x = torch.cat([x, p], dim=1)
        return visual.ln_pre(x)

    def head(self, x: Tensor, num_prompts: int = 0,
             return_tokens: bool = False
             ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Drop the prompt tokens, pool, project.

        Args:
            x: (B, 1+N+Mv, Dv) last-block output.
            num_prompts: Mv, the trailing prompt tokens.
            return_tokens: also return the projected class+patch tokens.

        Returns:
            (B, D) image features, and with ``return_tokens`` the
            (B, 1+N, D) projected tokens (class token first).
        """
        visual = self.visual
        x = x[:, :x.shape[1] - num_prompts]
        if visual.final_ln_after_pool:
            tokens = x
            pooled = visual.ln_post(self._global_pool(x))
        else:
            tokens = visual.ln_post(x)
            pooled = self._global_pool(tokens)
        if visual.proj is not None:
            pooled = pooled @ visual.proj
        if not return_tokens:
            return pooled
        # Projected class+patch tokens, as the pooled feature is projected.
        if visual.proj is not None:
            tokens = tokens @ visual.proj
        return pooled, tokens

    def _global_pool(self, x: Tensor) -> Tensor:
        """(B, 1+N, Dv) -> (B, Dv), open_clip's ``pool_type``."""
        pool_type = self.visual.pool_type
        if pool_type == 'avg':
            return x[:, 1:].mean(dim=1)
        if pool_type == 'tok':
            return x[:, 0]
        return x

    def _checked_prompts(self, prompts: Optional[PromptTokens],
                         deep_prompts: Optional[Sequence[PromptTokens]]
                         ) -> Tuple[list, int]:
        """The deep prompts as a list and Mv, checked against the tower."""
        deep = list(deep_prompts or [])
        if deep and prompts is None:
            raise ValueError('deep visual prompts need layer-0 visual prompts')
        if len(deep) >= self.layers:
            raise ValueError(f'{len(deep)} deep visual prompt layers for a '
                             f'{self.layers}-layer image encoder')
        return deep, 0 if prompts is None else prompts.shape[-2]

    def encode(self,
               images: Tensor,
               prompts: Optional[PromptTokens] = None,
               deep_prompts: Optional[Sequence[PromptTokens]] = None,
               return_tokens: bool = False
               ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """embed -> blocks -> head (arguments as
        :meth:`~mmpl.clip.FrozenCLIP.encode_image`)."""
        deep, num_prompts = self._checked_prompts(prompts, deep_prompts)
        x = self.run(self.embed(images, prompts),
                     before_block=visual_deep_prompts(deep, num_prompts))
        return self.head(x, num_prompts, return_tokens)

    def value_path(self, x: Tensor) -> Tensor:
        """The last block's value path (MaskCLIP, Zhou et al., ECCV 2022):
        ``ln_1 -> value projection -> out_proj``, no attention mixing, no
        residual, no MLP, so each output position sees only its own token.

        Args:
            x: (B, L, Dv) input of the last block.

        Returns:
            (B, L, Dv).
        """
        block = self.blocks[-1]
        attn = block.attn
        width = x.shape[-1]
        bias = attn.in_proj_bias
        v = F.linear(block.ln_1(x), attn.in_proj_weight[2 * width:],
                     None if bias is None else bias[2 * width:])
        return attn.out_proj(v)

    def _project_tokens(self, x: Tensor) -> Tensor:
        """(B, L, Dv) -> (B, L, D): ``ln_post`` and ``proj`` per token."""
        x = self.visual.ln_post(x)
        return x if self.visual.proj is None else x @ self.visual.proj

    def encode_dense(self,
                     images: Tensor,
                     prompts: Optional[PromptTokens] = None,
                     deep_prompts: Optional[Sequence[PromptTokens]] = None
                     ) -> Tuple[Tensor, Tensor, Tensor]:
        """:meth:`encode` with both dense readouts of the class+patch tokens.

        Args:
            images, prompts, deep_prompts: as :meth:`encode`.

        Returns:
            (B, D) image features (as :meth:`encode`), the (B, 1+N, D)
            projected final tokens (as ``return_tokens=True``) and the
            (B, 1+N, D) value-path tokens: the last block's
            :meth:`value_path` of its input, then ``ln_post`` and ``proj``
            (MaskCLIP's readout; it localises where the final outputs do
            not). Class token first, prompt tokens dropped.
        """
        deep, num_prompts = self._checked_prompts(prompts, deep_prompts)
        hook = visual_deep_prompts(deep, num_prompts)
        last = self.layers - 1
        x = self.run(self.embed(images, prompts), 0, last, before_block=hook)
        if hook is not None:
            x = hook(last, x)
        values = self.value_path(x)[:, :x.shape[1] - num_prompts]
        pooled, tokens = self.head(self.run(x, last), num_prompts,
                                   return_tokens=True)
        return pooled, tokens, self._project_tokens(values)
