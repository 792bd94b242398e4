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
    """
    tokens: int = 0
    prefix_tokens: int = 0

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
    """The prefix once per image, the class positions after it.

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
        self.states = tower.embed(prompt_embeds[:, :, prefix:].flatten(0, 1),
                                  start=prefix)  # (G*C, S, Dt)
        device = self.states.device
        self.group = torch.arange(groups, device=device).repeat_interleave(
            classes)  # (G*C,) image of each sequence
        self.eot = (eot_index - prefix).repeat(groups)  # (G*C,) in S
        self.mask = causal_mask_after_prefix(prefix, self.states.shape[1],
                                             device)
        self.chunk_size = chunk_size
        self.prefix_tokens = groups * prefix
        self.tokens = self.prefix_tokens + self.states.shape[0] * \
            self.states.shape[1]

    def step(self, i: int, prompts: Optional[Tensor] = None) -> None:
        tower = self.tower
        if prompts is not None:
            self.prefix = replace_text_slots(
                self.prefix, self._prompts(prompts, self.prefix.dtype))
        block = tower.blocks[i]
        k, v = prefix_keys_values(block, self.prefix)  # (G, H, P, Dt/H)

        def after_prefix(j: int, x: Tensor) -> Tensor:
            rows = x.shape[0]
            size = self.chunk_size or rows
            outs = [block_after_prefix(block, x[s:s + size],
                                       k[self.group[s:s + size]],
                                       v[self.group[s:s + size]], self.mask)
                    for s in range(0, rows, size)]
            return outs[0] if len(outs) == 1 else torch.cat(outs)

        self.states = tower.run(self.states, i, i + 1, block_fn=after_prefix)
        if i + 1 < tower.layers:  # nothing reads the last prefix output
            self.prefix = tower.run(self.prefix, i, i + 1)


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
