"""Text blocks that attend to a shared prefix computed once.

Under the causal mask, the hidden states of positions ``0 .. P-1`` depend only
on those positions. When every class prompt of an image starts with the same
``P`` tokens (``[SOS] ctx_1 .. ctx_M``: CoOp, CoCoOp, FTP, MaPLe, DGPrompt),
they are computed once per image, and each class sequence runs only its
own positions ``P ..`` EOT, attending to the prefix's keys and values of
that layer. The result is the full computation's, exactly (tests compare).

Works on open_clip's ``ResidualAttentionBlock`` (pre-norm ``ln_1`` ->
``nn.MultiheadAttention`` -> ``ls_1``; ``ln_2`` -> ``mlp`` -> ``ls_2``), with
the attention's packed input projection.

:func:`packed_block_after_prefix` runs one block on the prefixes and every
length group of class sequences at once: their rows packed into one
(T, D) matrix, so that each projection and the MLP is one matmul per block
(not one per length group, whose few rows run far below the machine's
matmul throughput), and only the attention runs per group.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def supports_prefix_sharing(block: nn.Module) -> bool:
    """Whether ``block`` has the layout these functions rely on."""
    attn = getattr(block, 'attn', None)
    return (isinstance(attn, nn.MultiheadAttention)
            and attn._qkv_same_embed_dim and attn.batch_first
            and attn.in_proj_weight is not None
            and not hasattr(block, 'ln_1_kv')
            and all(hasattr(block, name)
                    for name in ('ln_1', 'ls_1', 'ln_2', 'mlp', 'ls_2')))


def _heads(x: Tensor, num_heads: int) -> Tensor:
    """(N, L, D) -> (N, H, L, D/H)."""
    n, length, width = x.shape
    return x.view(n, length, num_heads, width // num_heads).transpose(1, 2)


def prefix_keys_values(block: nn.Module, x: Tensor) -> Tuple[Tensor, Tensor]:
    """Keys and values of the block's attention for its input ``x``.

    Args:
        x: (G, P, D) block input of the prefix.

    Returns:
        (G, H, P, D/H) keys and values.
    """
    attn = block.attn
    width = x.shape[-1]
    bias = attn.in_proj_bias
    kv = F.linear(block.ln_1(x), attn.in_proj_weight[width:],
                  None if bias is None else bias[width:])
    k, v = kv.chunk(2, dim=-1)
    return _heads(k, attn.num_heads), _heads(v, attn.num_heads)


def sequence_repeats(group: Tensor, groups: int) -> Optional[int]:
    """R when the (N,) image index ``group`` of N = G*R sequences reads
    ``0 x R, 1 x R, .. G-1 x R`` (a length group of class prompts, image by
    image: always so without chunks), else None."""
    n = group.shape[0]
    if n == 0 or n % groups:
        return None
    expected = torch.arange(groups, device=group.device).repeat_interleave(
        n // groups)
    return n // groups if torch.equal(group, expected) else None


def prefix_per_sequence(prefix: Tensor, group: Tensor,
                        repeats: Optional[int]) -> Tensor:
    """``prefix[group]``: (G, ...) states of the prefixes -> (N, ...) one
    per sequence. With ``repeats`` (:func:`sequence_repeats`) an expand
    instead of a gather (a view when G = 1): the same values, and its
    backward is a sum, not a scatter-add into a zero tensor."""
    if repeats is None:
        return prefix[group]
    g, rest = prefix.shape[0], prefix.shape[1:]
    return prefix.unsqueeze(1).expand(g, repeats, *rest).reshape(
        g * repeats, *rest)


def _after_attention(block: nn.Module, x: Tensor, attn_out: Tensor) -> Tensor:
    """The rest of the block after its attention: the residual of the
    (projected) attention output ``attn_out``, then the MLP's."""
    x = x + block.ls_1(attn_out)
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def causal_mask_after_prefix(prefix: int, length: int,
                             device: torch.device) -> Tensor:
    """(S, P+S) bool: position P+i sees keys 0 .. P+i."""
    return torch.ones(length, prefix + length, dtype=torch.bool,
                      device=device).tril(diagonal=prefix)


def block_after_prefix(block: nn.Module, x: Tensor, prefix_k: Tensor,
                       prefix_v: Tensor, mask: Tensor) -> Tensor:
    """The block on the positions after a prefix, causally.

    Args:
        x: (N, S, D) block input of positions ``P .. P+S-1``.
        prefix_k, prefix_v: (N, H, P, D/H) the prefix's keys and values at
            this block (from :func:`prefix_keys_values`).
        mask: (S, P+S) from :func:`causal_mask_after_prefix`.

    Returns:
        (N, S, D) block output of those positions.
    """
    attn = block.attn
    n, length, width = x.shape
    q, k, v = F.linear(block.ln_1(x), attn.in_proj_weight,
                       attn.in_proj_bias).chunk(3, dim=-1)
    heads = attn.num_heads
    k = torch.cat([prefix_k.to(k.dtype), _heads(k, heads)], dim=2)
    v = torch.cat([prefix_v.to(v.dtype), _heads(v, heads)], dim=2)
    out = F.scaled_dot_product_attention(_heads(q, heads), k, v,
                                         attn_mask=mask)
    out = attn.out_proj(out.transpose(1, 2).reshape(n, length, width))
    return _after_attention(block, x, out)


def packed_block_after_prefix(block: nn.Module, x: Tensor, groups: int,
                              prefix: int, parts: Sequence,
                              keep_prefix: bool = True) -> Tensor:
    """The block on packed rows: G prefixes of P positions (causal), then
    length groups of class sequences that attend to their image's prefix
    (:func:`block_after_prefix`, the same values). One matmul per
    projection and for the MLP over all T rows; attention per prefix set
    and per length group.

    Args:
        x: (T, D) block input rows: the G*P prefix rows (image-major), then
            each part's N*S rows (sequence-major), T = G*P + sum N*S.
        groups, prefix: G, P.
        parts: the length groups, in the order of their rows: each with
            ``sequences`` N, ``length`` S, ``rows`` N*S, ``image`` (N,) the
            prefix of each sequence, ``repeats`` (:func:`sequence_repeats`
            of ``image``) and ``mask`` (S, P+S)
            (:class:`~mmpl.clip.text_plan.TextPart`).
        keep_prefix: also compute the prefix rows' output (False at the
            last block: nothing reads it).

    Returns:
        (T, D) block output rows, or (T - G*P, D) without the prefixes.
    """
    attn = block.attn
    heads, width = attn.num_heads, x.shape[-1]
    qkv = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias)
    pieces = qkv.split([groups * prefix] + [part.rows for part in parts])
    q, k, v = (_heads(t, heads)
               for t in pieces[0].view(groups, prefix, -1).chunk(3, dim=-1))
    outs = []
    if keep_prefix:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        outs.append(out.transpose(1, 2).reshape(groups * prefix, width))
    for part, piece in zip(parts, pieces[1:]):
        n, length = part.sequences, part.length
        qc, kc, vc = (_heads(t, heads)
                      for t in piece.view(n, length, -1).chunk(3, dim=-1))
        kc = torch.cat([prefix_per_sequence(k, part.image, part.repeats), kc],
                       dim=2)
        vc = torch.cat([prefix_per_sequence(v, part.image, part.repeats), vc],
                       dim=2)
        out = F.scaled_dot_product_attention(qc, kc, vc, attn_mask=part.mask)
        outs.append(out.transpose(1, 2).reshape(n * length, width))
    out = attn.out_proj(torch.cat(outs) if len(outs) > 1 else outs[0])
    return _after_attention(block, x if keep_prefix else x[groups * prefix:],
                            out)


def block_batch_first(block: nn.Module, x: Tensor,
                      attn_mask: Tensor = None) -> Tensor:
    """The block on batch-first hidden states, its projections applied to
    contiguous (N*L, D) rows.

    ``nn.MultiheadAttention`` outside its inference fast path (i.e. in
    training) transposes a batch-first input to (L, N, D) and applies the
    packed input projection to that strided tensor, which torch runs as a
    batched matmul with the weight expanded L times (forward and backward).
    This computes the same block with one matmul per projection and the
    fused attention kernel; exact up to float rounding (tests compare).

    Args:
        x: (N, L, D) block input.
        attn_mask: optional (L, L) additive float or bool mask (text tower).

    Returns:
        (N, L, D) block output.
    """
    attn = block.attn
    n, length, width = x.shape
    q, k, v = F.linear(block.ln_1(x), attn.in_proj_weight,
                       attn.in_proj_bias).chunk(3, dim=-1)
    heads = attn.num_heads
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        attn_mask = attn_mask.to(q.dtype)
    out = F.scaled_dot_product_attention(
        _heads(q, heads), _heads(k, heads), _heads(v, heads),
        attn_mask=attn_mask)
    out = attn.out_proj(out.transpose(1, 2).reshape(n, length, width))
    return _after_attention(block, x, out)
