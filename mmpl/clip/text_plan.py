"""One plan for every text encoding: which sequences go through the text
tower together, over how many positions, and what they share.

The input is N = G*C sequences, image-major: the C class prompts of G images
(or N plain texts: G = N, C = 1). :func:`plan_text_encoding` is the one
place that decides how they run; the result, a :class:`TextEncodingPlan`,
is plain data:

* a *run* (:class:`TextRun`) takes its rows through every block, one block
  loop of the tower (:meth:`~.towers.TextTower.run`);
* a *part* (:class:`TextPart`) of a run is a set of sequences of one length
  that share each block's attention call.

The decisions, all exact (the causal mask: no position sees a later one):

* **shared prefix**: when the first P positions (``[SOS] ctx``) are the
  same for every class of an image, their states do not depend on the
  class: they run once per image (the run's prefix rows) and each class
  sequence runs only its positions P .. EOT, attending to the prefix's keys
  and values (:mod:`.prefix_attention`);
* **length**: each part is cut after its last EOT (later positions never
  reach an EOT feature). Parts hold one EOT position, or neighbouring EOT
  positions merged within :data:`GROUP_PAD_WASTE` of padding where each part
  is a run of its own;
* **packing**: the prefix rows and every part of a run are one (T, Dt)
  matrix, so each block's projections and MLP are one matmul (only the
  attention runs per part);
* **chunks** (``chunk_size``, memory): at most that many sequences per
  block call. An encoding that runs all blocks at once takes each chunk
  through every block as a run of its own (only one chunk's states are
  alive), after a run of the prefixes that keeps their keys and values;
  a step-wise one keeps every sequence's states between blocks and splits
  each part's block call instead.

Step-wise encodings (``stepwise=True``: the towers interleaved block by
block, DGPrompt) have one run. :class:`TextStates` holds the states of a
run between blocks (``step(i, prompts)``, ``eot_states()``,
``features()``); :func:`encode_with_plan` runs a whole plan. A plan also
says how much work it is (``tokens``, ``block_calls`` ..): what the
observers of :class:`~mmpl.clip.FrozenCLIP`'s text encoder receive.
"""
from dataclasses import dataclass
from functools import cached_property
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .prefix_attention import (block_after_prefix, causal_mask_after_prefix,
                               packed_block_after_prefix, prefix_keys_values,
                               prefix_per_sequence, sequence_repeats)
from .towers import PromptTokens, TextTower, expand_prompts, replace_text_slots

#: Where each part is a run of its own (plain texts, chunked class prompts),
#: neighbouring EOT positions share a part, padded to the longest, while the
#: padded tokens stay within this fraction of the exact tokens: fewer,
#: larger block calls for a little padding. 0 keeps one part per EOT
#: position. Packed runs need no padding (docs/performance.md).
GROUP_PAD_WASTE = 0.25


@dataclass(frozen=True)
class TextPart:
    """Sequences of one length that share each block's attention call.

    Attributes:
        index: (n,) the sequences (their positions among the N inputs), or
            None: all N, in input order.
        image: (n,) the image (prefix) of each sequence, ``index // C``.
        length: S, the positions run: 0 .. S-1, or P .. P+S-1 after a
            prefix.
        eot: (n,) EOT positions among the S, or None: the last one.
        mask: (S, P+S) bool mask after a prefix
            (:func:`~.prefix_attention.causal_mask_after_prefix`); None:
            the tower's own mask.
        repeats: R when ``image`` reads 0 x R, 1 x R, .. (the prefixes reach
            the part as an expand, not a gather), else None.
    """
    index: Optional[Tensor]
    image: Tensor
    length: int
    eot: Optional[Tensor] = None
    mask: Optional[Tensor] = None
    repeats: Optional[int] = None

    @property
    def sequences(self) -> int:
        return self.image.shape[0]

    @property
    def rows(self) -> int:
        """n*S: the part's rows in its run's (T, Dt) states."""
        return self.sequences * self.length


@dataclass(frozen=True)
class TextRun:
    """Rows that go through every block together (one block loop).

    Attributes:
        parts: the sequences, in the order of their rows.
        prefix: P when the parts start after a shared prefix, else 0.
        prefix_images: G when the run holds the G prefixes (P rows each,
            before the parts' rows); 0 when its parts attend to the keys and
            values an earlier run kept.
        packed: all rows as one matrix per block
            (:func:`~.prefix_attention.packed_block_after_prefix`);
            otherwise a block call per part (and one for the prefixes).
        chunk_size: at most this many sequences of a part per block call
            (runs that are not packed), or None.
    """
    parts: Tuple[TextPart, ...]
    prefix: int = 0
    prefix_images: int = 0
    packed: bool = False
    chunk_size: Optional[int] = None

    @property
    def prefix_rows(self) -> int:
        return self.prefix_images * self.prefix


@dataclass(frozen=True)
class TextEncodingPlan:
    """How N = G*C sequences (image-major) are encoded.

    Attributes:
        classes: C.
        runs: the block loops, in order.
    """
    classes: int
    runs: Tuple[TextRun, ...]

    @property
    def sequences(self) -> int:
        """N, the sequences encoded."""
        return sum(part.sequences for run in self.runs for part in run.parts)

    @property
    def prefix(self) -> int:
        """P, the positions shared per image (0: none)."""
        return self.runs[0].prefix

    @property
    def prefix_tokens(self) -> int:
        """Positions run for the shared prefixes (G*P: once per image)."""
        return sum(run.prefix_rows for run in self.runs)

    @property
    def tokens(self) -> int:
        """Every position that goes through the blocks (padding included,
        shared prefixes once)."""
        return self.prefix_tokens + sum(part.rows for run in self.runs
                                        for part in run.parts)

    @property
    def block_calls(self) -> int:
        """Attention calls per block: one per part and one per run that
        holds prefixes (a part split into chunks counts once)."""
        return sum(len(run.parts) + bool(run.prefix_images)
                   for run in self.runs)

    @cached_property
    def _inverse(self) -> Optional[Tensor]:
        """(N,) the row of each input sequence in the runs' parts, or None
        when they are in input order (one part of all N)."""
        parts = [part for run in self.runs for part in run.parts]
        if len(parts) == 1 and parts[0].index is None:
            return None
        order = torch.cat([part.index for part in parts])
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=order.device)
        return inverse

    def in_input_order(self, x: Tensor) -> Tensor:
        """(N, ...) rows in the order of the runs' parts -> input order."""
        return x if self._inverse is None else x[self._inverse]


# ------------------------------------------------------------------ planning
def merged_group_sizes(eots: Sequence[int], counts: Sequence[int],
                       waste: float) -> List[int]:
    """Sizes of the groups of sequences encoded together: the runs of
    ``counts`` sequences per ascending EOT position ``eots``, merged while
    (sequences x longest length) <= (1 + ``waste``) x the exact tokens."""
    sizes: List[int] = []
    size = tokens = 0
    for eot, count in zip(eots, counts):
        length = eot + 1
        if size and (size + count) * length <= (1 + waste) * (
                tokens + count * length):
            size, tokens = size + count, tokens + count * length
            continue
        if size:
            sizes.append(size)
        size, tokens = count, count * length
    sizes.append(size)
    return sizes


def _length_groups(eot_index: Tensor, chunk_size: Optional[int],
                   causal: bool) -> List[Optional[Tensor]]:
    """Index tensors of the sequences that run together: neighbouring EOT
    positions merged (causal towers), at most ``chunk_size`` each; [None]
    when one run takes them all in input order."""
    n = eot_index.shape[0]
    if not causal:
        if chunk_size is None:
            return [None]
        return list(torch.arange(n, device=eot_index.device).split(
            chunk_size))
    lengths, order = eot_index.sort(stable=True)
    eots, counts = torch.unique_consecutive(lengths, return_counts=True)
    counts = merged_group_sizes(eots.tolist(), counts.tolist(),
                                GROUP_PAD_WASTE)
    if len(counts) == 1 and chunk_size is None:
        return [None]
    groups = []
    for group in order.split(counts):
        # input order inside a group (a merged group interleaves the
        # images' classes otherwise): the class prompts of an image stay
        # contiguous, so a shared prefix reaches them as an expand
        group = group.sort().values
        groups.extend(group.split(chunk_size) if chunk_size else [group])
    return groups


def shares_prefix(tower: TextTower, eot_index: Tensor, prefix: int,
                  deep_lengths: Sequence[int]) -> bool:
    """Whether a P = ``prefix`` token prefix can run once per image: a
    causal tower with open_clip's blocks, every EOT after the prefix, and
    the deep prompts (of M = ``deep_lengths`` tokens) inside it."""
    return (prefix > 0 and tower.prefix_sharing
            and int(eot_index.min()) >= prefix
            and all(m < prefix for m in deep_lengths)
            and len(deep_lengths) < tower.layers)


def whole_sequences(eot_index: Tensor, classes: int,
                    length: int) -> TextEncodingPlan:
    """Every sequence whole, ``length`` positions from 0 (past the given
    embeddings: the padding token), all in one part of one run.

    Args:
        eot_index: (N,) EOT positions.
        classes: C (N = G*C).
        length: the positions run.
    """
    image = torch.arange(eot_index.shape[0],
                         device=eot_index.device) // classes
    return TextEncodingPlan(
        classes, (TextRun((TextPart(None, image, length, eot_index), )), ))


def _exact_parts(eot_index: Tensor, groups: int,
                 prefix: int) -> Tuple[TextPart, ...]:
    """One part per EOT position of the C classes (EOT last), the G images'
    sequences of those classes image by image, after the prefix."""
    classes, device = eot_index.shape[0], eot_index.device
    lengths, order = eot_index.sort(stable=True)
    counts = torch.unique_consecutive(lengths, return_counts=True)[1]
    images = torch.arange(groups, device=device)
    parts = []
    for cls in order.split(counts.tolist()):
        length = int(eot_index[cls[0]]) + 1 - prefix
        parts.append(TextPart(
            index=(images[:, None] * classes + cls).flatten(),
            image=images.repeat_interleave(cls.numel()),
            length=length,
            mask=causal_mask_after_prefix(prefix, length, device),
            repeats=cls.numel()))
    return tuple(parts)


def plan_text_encoding(tower: TextTower,
                       eot_index: Tensor,
                       classes: int = 1,
                       shared_prefix: int = 0,
                       deep_lengths: Sequence[int] = (),
                       chunk_size: Optional[int] = None,
                       length: Optional[int] = None,
                       stepwise: bool = False) -> TextEncodingPlan:
    """Decide how N = G*C text sequences are encoded (module docstring).

    Args:
        tower: the text tower.
        eot_index: (N,) EOT positions, image-major (class prompts: the (C,)
            positions repeated G times).
        classes: C.
        shared_prefix: P when the first P positions are the same for every
            class of an image, else 0.
        deep_lengths: M of the deep prompts of layers 1 .. J-1.
        chunk_size: at most this many sequences per block call.
        length: L, the positions given (the length of towers without a
            causal mask).
        stepwise: the caller advances the blocks itself: one run.

    Returns:
        the :class:`TextEncodingPlan`.
    """
    n = eot_index.shape[0]
    if chunk_size is not None and chunk_size >= n:
        chunk_size = None
    if shares_prefix(tower, eot_index, shared_prefix, deep_lengths):
        prefix, groups = shared_prefix, n // classes
        if stepwise or chunk_size is None:
            run = TextRun(_exact_parts(eot_index[:classes], groups, prefix),
                          prefix, groups, packed=chunk_size is None,
                          chunk_size=chunk_size)
            return TextEncodingPlan(classes, (run, ))
        runs = [TextRun((), prefix, groups)]  # keys and values, every block
        eot = eot_index - prefix
        for index in _length_groups(eot, chunk_size, causal=True):
            ends = eot[index]
            size = int(ends.max()) + 1
            image = index // classes
            runs.append(TextRun((TextPart(
                index, image, size, ends,
                causal_mask_after_prefix(prefix, size, eot.device),
                sequence_repeats(image, groups)), ), prefix))
        return TextEncodingPlan(classes, tuple(runs))
    if stepwise:
        return whole_sequences(eot_index, classes,
                               int(eot_index.max()) + 1 if tower.causal
                               else length)
    runs = []
    for index in _length_groups(eot_index, chunk_size, tower.causal):
        ends = eot_index if index is None else eot_index[index]
        size = length
        if tower.causal:  # deep prompts keep positions 1 .. M
            size = max([int(ends.max()) + 1] + [1 + m for m in deep_lengths])
        image = (torch.arange(n, device=eot_index.device)
                 if index is None else index) // classes
        runs.append(TextRun((TextPart(index, image, size, ends), )))
    return TextEncodingPlan(classes, tuple(runs))


# ----------------------------------------------------------------- execution
class TextStates:
    """The hidden states of one run of a plan between blocks, as (T, Dt)
    rows: the run's G*P prefix rows first (until the last block, which does
    not compute them: nothing reads them), then each part's n*S rows,
    sequence-major.

    Args:
        tower: the text tower.
        plan: the plan.
        run: one of its runs.
        prompt_embeds: (N, L, Dt) token embeddings of all N sequences
            (layer-0 prompts in place; a prefix is read from class 0).
        keys_values: per block the prefixes' (G, H, P, Dt/H) keys and
            values: appended to by a run that holds the prefixes and is not
            packed, read by runs after it.
    """

    def __init__(self, tower: TextTower, plan: TextEncodingPlan, run: TextRun,
                 prompt_embeds: Tensor,
                 keys_values: List[Tuple[Tensor, Tensor]]):
        self.tower, self.plan, self.run = tower, plan, run
        self.keys_values = keys_values
        self.prefix_rows = run.prefix_rows
        rows = []
        if self.prefix_rows:
            prefixes = prompt_embeds.unflatten(
                0, (run.prefix_images, plan.classes))[:, 0, :run.prefix]
            rows.append(tower.embed(prefixes).flatten(0, 1))
        for part in run.parts:
            rows.append(self._embed(part, prompt_embeds).flatten(0, 1))
        self.rows = rows[0] if len(rows) == 1 else torch.cat(rows)

    def _embed(self, part: TextPart, prompt_embeds: Tensor) -> Tensor:
        """(n, S, Dt) block input of the part's positions; positions past
        the given L hold the padding token (id 0), as the tokenizer's
        full-length sequences."""
        start = self.run.prefix
        x = prompt_embeds[:, start:start + part.length]
        if part.index is not None:
            x = x[part.index]
        pad = part.length - x.shape[1]
        if pad > 0:
            ids = torch.zeros(x.shape[0], pad, dtype=torch.long,
                              device=x.device)
            x = torch.cat([x, self.tower.embed_tokens(ids).to(x.dtype)], 1)
        return self.tower.embed(x, start=start)

    def _part_rows(self) -> List[Tensor]:
        """Each part's (n, S, Dt) states (views)."""
        parts = self.run.parts
        rows = self.rows[self.prefix_rows:].split([p.rows for p in parts])
        return [r.view(p.sequences, p.length, -1)
                for p, r in zip(parts, rows)]

    def _prefix_states(self, x: Tensor) -> Tensor:
        """(T, Dt) rows before the last block -> (G, P, Dt) states of the
        prefixes."""
        run = self.run
        return x[:run.prefix_rows].view(run.prefix_images, run.prefix, -1)

    def _per_sequence(self, prompts: Tensor, part: TextPart) -> Tensor:
        """(M, Dt) shared | (G, M, Dt) per image -> (n, M, Dt) for the
        part's sequences (plain texts: G = N, one per sequence)."""
        if prompts.dim() == 2:
            return expand_prompts(prompts, part.sequences)
        if part.index is not None:
            return prompts[part.image]
        classes = self.plan.classes
        return prompts if classes == 1 else prompts.repeat_interleave(
            classes, 0)

    def _insert(self, prompts: PromptTokens) -> None:
        """Put (M, Dt) | (G, M, Dt) prompts into positions 1 .. M: of the
        prefixes when the run holds them, of every sequence when nothing is
        shared (a run after the prefixes' run reads them through their keys
        and values)."""
        dtype = self.rows.dtype
        if self.prefix_rows:
            states = self._prefix_states(self.rows)
            states = replace_text_slots(
                states, expand_prompts(prompts, states.shape[0]).to(dtype))
            self.rows = torch.cat([states.flatten(0, 1),
                                   self.rows[self.prefix_rows:]])
        elif not self.run.prefix:
            rows = [replace_text_slots(
                x, self._per_sequence(prompts, part).to(dtype)).flatten(0, 1)
                for part, x in zip(self.run.parts, self._part_rows())]
            self.rows = rows[0] if len(rows) == 1 else torch.cat(rows)

    def step(self, i: int, prompts: Optional[PromptTokens] = None) -> None:
        """Block ``i``, after putting its text prompts (None: keep the
        states) into positions 1 .. M."""
        if prompts is not None:
            self._insert(prompts)
        run = self.run
        if self.prefix_rows and not run.packed:  # before the checkpoint
            self.keys_values.append(prefix_keys_values(
                self.tower.blocks[i], self._prefix_states(self.rows)))
        self.rows = self.tower.run(self.rows, i, i + 1, block_fn=self._block)
        if i + 1 == self.tower.layers:
            self.prefix_rows = 0

    def _block(self, i: int, x: Tensor) -> Tensor:
        """Block ``i`` on the (T, Dt) rows (a function of its arguments
        only: gradient checkpointing calls it again in backward)."""
        run, tower = self.run, self.tower
        block = tower.blocks[i]
        keep_prefix = i + 1 < tower.layers  # nothing reads the last output
        if run.packed:
            return packed_block_after_prefix(block, x, run.prefix_images,
                                             run.prefix, run.parts,
                                             keep_prefix)
        outs = []
        if run.prefix_rows and keep_prefix:
            outs.append(tower.block(i, self._prefix_states(x)).flatten(0, 1))
        rows = x[run.prefix_rows:].split([p.rows for p in run.parts])
        for part, states in zip(run.parts, rows):
            states = states.view(part.sequences, part.length, -1)
            size = run.chunk_size or part.sequences
            for s in range(0, part.sequences, size):
                outs.append(self._part_block(i, part, states[s:s + size],
                                             s, size).flatten(0, 1))
        if not outs:
            return x[:0]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def _part_block(self, i: int, part: TextPart, x: Tensor, start: int,
                    size: int) -> Tensor:
        """Block ``i`` on (n', S, Dt) states of the part's sequences
        ``start .. start+n'-1``."""
        if not self.run.prefix:
            return self.tower.block(i, x)
        k, v = self.keys_values[i]  # (G, H, P, Dt/H)
        image, repeats = part.image, part.repeats
        if size < part.sequences:
            image = image[start:start + size]
            repeats = sequence_repeats(image, k.shape[0])
        return block_after_prefix(self.tower.blocks[i], x,
                                  prefix_per_sequence(k, image, repeats),
                                  prefix_per_sequence(v, image, repeats),
                                  part.mask)

    def eot_states(self) -> Tensor:
        """(n, Dt) the states at each sequence's EOT (the input of the next
        block), in the run's order."""
        outs = [x[:, -1] if part.eot is None else
                x[torch.arange(x.shape[0], device=x.device), part.eot]
                for part, x in zip(self.run.parts, self._part_rows())]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def features(self) -> Tensor:
        """(n, D) text features (not normalised) after the last block."""
        return self.tower.project(self.eot_states())


class ClassPromptSteps:
    """The class prompts of G images advanced one block at a time (a
    one-run plan; interleaved towers).

    Args:
        tower: the text tower.
        plan: a plan with one run.
        prompt_embeds: (G, C, L, Dt) prompt embeddings (layer-0 prompts in
            place).
    """

    def __init__(self, tower: TextTower, plan: TextEncodingPlan,
                 prompt_embeds: Tensor):
        if len(plan.runs) != 1:
            raise ValueError('step-wise encoding needs a one-run plan')
        self.groups, self.classes = prompt_embeds.shape[:2]
        self.plan = plan
        self.states = TextStates(tower, plan, plan.runs[0],
                                 prompt_embeds.flatten(0, 1), [])

    def step(self, i: int, prompts: Optional[PromptTokens] = None) -> None:
        """Block ``i``; ``prompts``: (M, Dt) or (G, M, Dt) text prompts of
        layer ``i`` for positions 1 .. M (None: keep the states)."""
        self.states.step(i, prompts)

    def eot_states(self) -> Tensor:
        """(G, C, Dt) the states at each class's EOT."""
        return self.plan.in_input_order(self.states.eot_states()).view(
            self.groups, self.classes, -1)

    def features(self) -> Tensor:
        """(G, C, D) text features (not normalised) after the last block."""
        return self.plan.in_input_order(self.states.features()).view(
            self.groups, self.classes, -1)


def encode_with_plan(tower: TextTower, plan: TextEncodingPlan,
                     prompt_embeds: Tensor,
                     deep_prompts: Sequence[PromptTokens] = ()) -> Tensor:
    """Run every run of ``plan`` through all blocks.

    Args:
        tower: the text tower.
        plan: the plan.
        prompt_embeds: (N, L, Dt) token embeddings (shallow prompts in
            place).
        deep_prompts: per layer 1 .. J-1, (M, Dt) or (G, M, Dt) per image
            (plain texts: G = N).

    Returns:
        (N, D) text features (not normalised), in input order.
    """
    deep = list(deep_prompts)
    keys_values: List[Tuple[Tensor, Tensor]] = []
    features = []
    for run in plan.runs:
        states = TextStates(tower, plan, run, prompt_embeds, keys_values)
        for i in range(tower.layers):
            states.step(i, deep[i - 1] if 0 < i <= len(deep) else None)
        if run.parts:
            features.append(states.features())
    return plan.in_input_order(
        features[0] if len(features) == 1 else torch.cat(features))
