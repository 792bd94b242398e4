"""Class prompts advanced through the text tower one block at a time.

A caller that interleaves the two towers (DGPrompt: each layer's prompts
are generated from the other tower's states of the same layer) cannot call
an encoder that runs all blocks. These objects hold the hidden states of the
C class prompts of G images between blocks:

* ``step(i, prompts)``: put layer ``i``'s text prompts ((G, M, Dt) or
  (M, Dt)) into positions 1 .. M (None: keep the states), run block ``i``;
* ``eot_states()``: (G, C, Dt) the current states at each class's EOT
  (the input of the next block);
* ``features()``: (G, C, D) the text features after the last block.

:class:`SharedPrefixSteps` runs each image's ``[SOS] ctx`` prefix (P
positions; the prompts stay inside it) once and the G*C class sequences
only their own positions, attending to the prefix's keys and values of
that block (:mod:`.prefix_attention`, exact under the causal mask).
:class:`FullSequenceSteps` runs every sequence whole: the reference it is
tested against (and the fallback when no prefix is shared).
"""
from typing import Optional

import torch
from torch import Tensor

from .prefix_attention import (block_after_prefix, causal_mask_after_prefix,
                               prefix_keys_values)
from .towers import TextTower, expand_prompts, replace_text_slots


class ClassPromptSteps:
    """Hidden states of the class prompts of G images between blocks.

    Attributes:
        groups: G. classes: C.
        tokens: positions that go through every block (class sequences
            plus, when shared, the prefixes once per image).
        prefix_tokens: of ``tokens``, the shared prefixes.
        block_calls: batched calls of each block per step (length groups,
            plus one for the prefixes).
    """
    tokens: int = 0
    prefix_tokens: int = 0
    block_calls: int = 1

    def __init__(self, tower: TextTower, groups: int, classes: int):
        self.tower = tower
        self.groups, self.classes = groups, classes

    def _prompts(self, prompts: Tensor, dtype: torch.dtype) -> Tensor:
        """(M, Dt) | (G, M, Dt) -> (G, M, Dt) in the tower's dtype."""
        return expand_prompts(prompts, self.groups).to(dtype)

    def step(self, i: int, prompts: Optional[Tensor] = None) -> None:
        raise NotImplementedError

    def eot_states(self) -> Tensor:
        """(G, C, Dt) the states at each class's EOT (the class sequences'
        (G*C, S, Dt) ``states``, EOT positions ``eot`` (G*C,))."""
        rows = torch.arange(self.states.shape[0], device=self.states.device)
        return self.states[rows, self.eot].view(self.groups, self.classes, -1)

    def features(self) -> Tensor:
        """(G, C, D) text features (not normalised) after the last block."""
        return self.tower.head(self.states, self.eot).view(
            self.groups, self.classes, -1)


class _LengthGroup:
    """The class sequences of one EOT length, for all G images: states
    (G*Cg, S, Dt) of positions P .. EOT (the EOT last), ``image`` (G*Cg,)
    the image of each row, the (S, P+S) causal mask."""

    def __init__(self, states: Tensor, image: Tensor, mask: Tensor):
        self.states, self.image, self.mask = states, image, mask


class SharedPrefixSteps(ClassPromptSteps):
    """The prefix once per image, the class positions after it, grouped by
    EOT position and each group cut after its EOT (exact under the causal
    mask; a loop over the few length groups, not over images or classes).

    Args:
        tower: the text tower.
        prompt_embeds: (G, C, L, Dt) prompt embeddings; the prefix is read
            from class 0.
        eot_index: (C,) EOT positions (>= P).
        prefix: P.
        chunk_size: at most this many class sequences per block call.
    """

    def __init__(self, tower: TextTower, prompt_embeds: Tensor,
                 eot_index: Tensor, prefix: int,
                 chunk_size: Optional[int] = None):
        groups, classes = prompt_embeds.shape[:2]
        super().__init__(tower, groups, classes)
        self.prefix = tower.embed(prompt_embeds[:, 0, :prefix])  # (G, P, Dt)
        device = prompt_embeds.device
        lengths, order = eot_index.sort(stable=True)
        counts = torch.unique_consecutive(lengths, return_counts=True)[1]
        #: the class order of the groups, and back
        self.inverse = torch.empty_like(order)
        self.inverse[order] = torch.arange(classes, device=device)
        self.parts = []
        for cls in order.split(counts.tolist()):
            length = int(eot_index[cls[0]]) + 1 - prefix  # S of the group
            x = prompt_embeds[:, cls, prefix:prefix + length]
            self.parts.append(_LengthGroup(
                tower.embed(x.flatten(0, 1), start=prefix),
                torch.arange(groups, device=device).repeat_interleave(
                    cls.numel()),
                causal_mask_after_prefix(prefix, length, device)))
        self.chunk_size = chunk_size
        self.prefix_tokens = groups * prefix
        self.tokens = self.prefix_tokens + sum(
            part.states.shape[0] * part.states.shape[1]
            for part in self.parts)
        self.block_calls = 1 + len(self.parts)

    def step(self, i: int, prompts: Optional[Tensor] = None) -> None:
        tower = self.tower
        if prompts is not None:
            self.prefix = replace_text_slots(
                self.prefix, self._prompts(prompts, self.prefix.dtype))
        block = tower.blocks[i]
        k, v = prefix_keys_values(block, self.prefix)  # (G, H, P, Dt/H)
        for part in self.parts:

            def after_prefix(j: int, x: Tensor, part=part) -> Tensor:
                rows = x.shape[0]
                size = self.chunk_size or rows
                image = part.image
                outs = [block_after_prefix(block, x[s:s + size],
                                           k[image[s:s + size]],
                                           v[image[s:s + size]], part.mask)
                        for s in range(0, rows, size)]
                return outs[0] if len(outs) == 1 else torch.cat(outs)

            part.states = tower.run(part.states, i, i + 1,
                                    block_fn=after_prefix)
        if i + 1 < tower.layers:  # nothing reads the last prefix output
            self.prefix = tower.run(self.prefix, i, i + 1)

    def _per_class(self, rows: list) -> Tensor:
        """Per group (G*Cg, D) rows -> (G, C, D) in class order."""
        out = torch.cat([r.view(self.groups, -1, r.shape[-1]) for r in rows],
                        dim=1)
        return out[:, self.inverse]

    def eot_states(self) -> Tensor:
        return self._per_class([p.states[:, -1] for p in self.parts])

    def features(self) -> Tensor:
        return self._per_class([
            self.tower.head(p.states, torch.full(
                (p.states.shape[0], ), p.states.shape[1] - 1,
                device=p.states.device)) for p in self.parts])


class FullSequenceSteps(ClassPromptSteps):
    """Every class sequence of every image whole (causal mask).

    Args:
        tower: the text tower.
        prompt_embeds: (G, C, L, Dt) prompt embeddings.
        eot_index: (C,) EOT positions.
    """

    def __init__(self, tower: TextTower, prompt_embeds: Tensor,
                 eot_index: Tensor):
        groups, classes = prompt_embeds.shape[:2]
        super().__init__(tower, groups, classes)
        self.states = tower.embed(prompt_embeds.flatten(0, 1))  # (G*C, L, Dt)
        self.eot = eot_index.repeat(groups)
        self.tokens = self.states.shape[0] * self.states.shape[1]

    def step(self, i: int, prompts: Optional[Tensor] = None) -> None:
        if prompts is not None:
            p = self._prompts(prompts, self.states.dtype)
            self.states = replace_text_slots(
                self.states, p.repeat_interleave(self.classes, 0))
        self.states = self.tower.run(self.states, i, i + 1)
