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

from .prefix_attention import (LengthGroup, block_after_prefix,
                               causal_mask_after_prefix,
                               packed_block_after_prefix, prefix_keys_values,
                               prefix_per_sequence, sequence_repeats)
from .towers import TextTower, expand_prompts, replace_text_slots


class ClassPromptSteps:
    """Hidden states of the class prompts of G images between blocks.

    Attributes:
        groups: G. classes: C.
        tokens: positions that go through every block (class sequences
            plus, when shared, the prefixes once per image).
        prefix_tokens: of ``tokens``, the shared prefixes.
        block_calls: attention calls of each block per step (length
            groups, plus one for the prefixes; packed steps run the
            projections and the MLP once over all rows).
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


class SharedPrefixSteps(ClassPromptSteps):
    """The prefix once per image, the class positions after it, grouped by
    EOT position and each group cut after its EOT (exact under the causal
    mask). The hidden states of the prefixes and of every group are rows
    of one (T, Dt) matrix: each block's projections and MLP run once over
    all of them (:func:`~.prefix_attention.packed_block_after_prefix`),
    the attention per group. With ``chunk_size`` (memory) a block runs
    the prefixes, then each group in chunks of at most that many
    sequences.

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
        device = prompt_embeds.device
        lengths, order = eot_index.sort(stable=True)
        counts = torch.unique_consecutive(lengths, return_counts=True)[1]
        #: the class order of the groups, and back
        self.inverse = torch.empty_like(order)
        self.inverse[order] = torch.arange(classes, device=device)
        self.prefix = prefix
        rows = [tower.embed(prompt_embeds[:, 0, :prefix]).flatten(0, 1)]
        self.parts = []
        for cls in order.split(counts.tolist()):
            length = int(eot_index[cls[0]]) + 1 - prefix  # S of the group
            x = prompt_embeds[:, cls, prefix:prefix + length]
            rows.append(tower.embed(x.flatten(0, 1), start=prefix).flatten(
                0, 1))
            self.parts.append(LengthGroup(
                groups * cls.numel(), length,
                torch.arange(groups, device=device).repeat_interleave(
                    cls.numel()), cls.numel(),
                causal_mask_after_prefix(prefix, length, device)))
        #: (T, Dt) hidden states: the G*P prefix rows (until the last
        #: block, which does not compute them), then each group's rows
        self.rows = torch.cat(rows)
        self.prefix_rows = groups * prefix
        #: None: every block packed (chunks only where they split a group)
        self.chunk_size = (chunk_size if chunk_size is not None
                           and chunk_size < groups * classes else None)
        self.prefix_tokens = groups * prefix
        self.tokens = self.rows.shape[0]
        self.block_calls = 1 + len(self.parts)

    def step(self, i: int, prompts: Optional[Tensor] = None) -> None:
        tower, groups, prefix = self.tower, self.groups, self.prefix
        if prompts is not None:
            states = self.rows[:self.prefix_rows].view(groups, prefix, -1)
            states = replace_text_slots(
                states, self._prompts(prompts, states.dtype))
            self.rows = torch.cat([states.flatten(0, 1),
                                   self.rows[self.prefix_rows:]])
        keep_prefix = i + 1 < tower.layers  # nothing reads the last output

        def packed(j: int, x: Tensor) -> Tensor:
            return packed_block_after_prefix(tower.blocks[j], x, groups,
                                             prefix, self.parts, keep_prefix)

        self.rows = tower.run(self.rows, i, i + 1,
                              block_fn=packed if self.chunk_size is None
                              else self._chunked)
        if not keep_prefix:
            self.prefix_rows = 0

    def _chunked(self, i: int, x: Tensor) -> Tensor:
        """Block ``i`` on the (T, Dt) rows: the prefixes' keys and values,
        each group in chunks, then the prefixes (but after the last
        block)."""
        tower, groups, prefix = self.tower, self.groups, self.prefix
        block, size = tower.blocks[i], self.chunk_size
        states = x[:groups * prefix].view(groups, prefix, -1)
        k, v = prefix_keys_values(block, states)  # (G, H, P, Dt/H)
        outs = []
        for part, rows in zip(self.parts,
                              x[groups * prefix:].split(self._part_rows())):
            rows = rows.view(part.sequences, part.length, -1)
            for s in range(0, part.sequences, size):
                image = part.image[s:s + size]
                repeats = sequence_repeats(image, groups)
                outs.append(block_after_prefix(
                    block, rows[s:s + size],
                    prefix_per_sequence(k, image, repeats),
                    prefix_per_sequence(v, image, repeats),
                    part.mask).flatten(0, 1))
        if i + 1 < tower.layers:  # (already inside run's checkpoint)
            outs.insert(0, tower._block(i, states).flatten(0, 1))
        return torch.cat(outs)

    def _part_rows(self) -> list:
        return [part.rows for part in self.parts]

    def _per_class(self, rows: list) -> Tensor:
        """Per group (G*Cg, D) rows -> (G, C, D) in class order."""
        out = torch.cat([r.view(self.groups, -1, r.shape[-1]) for r in rows],
                        dim=1)
        return out[:, self.inverse]

    def eot_states(self) -> Tensor:
        parts = self.rows[self.prefix_rows:].split(self._part_rows())
        return self._per_class([
            rows.view(part.sequences, part.length, -1)[:, -1]
            for part, rows in zip(self.parts, parts)])

    def features(self) -> Tensor:
        eot = self.eot_states()  # (G, C, Dt)
        zero = torch.zeros(eot.shape[0] * eot.shape[1], dtype=torch.long,
                           device=eot.device)
        return self.tower.head(eot.flatten(0, 1).unsqueeze(1), zero).view(
            self.groups, self.classes, -1)


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
