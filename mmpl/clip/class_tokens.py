"""Token layout of class prompts: ``[SOS] X_1 .. X_M <class name> . [EOT]``.

The ``M`` placeholder tokens after SOS are where a prompt module writes its
context vectors; everything else is the frozen embedding of the class name.
Sequences are cut after the last EOT of the class set (exact under the
causal mask), so prompt modules never build 77-token tensors (unless
``clip.cut_after_eot`` is off: the benchmark's reference formulation).
"""
from dataclasses import dataclass
from typing import Sequence

from torch import Tensor

from ..utils.errors import ConfigError


def readable_classname(name: str) -> str:
    """Underscores in class names become spaces in prompts (CoOp rule)."""
    return name.replace('_', ' ')


@dataclass
class ClassTokens:
    """Frozen token data of a class set for prompts with ``n_ctx`` slots.

    Attributes:
        token_ids: (C, L) token ids, L = last EOT position + 1.
        embeddings: (C, L, Dt) frozen token embeddings.
        eot_index: (C,) position of each class's EOT token.
        name_lengths: (C,) number of tokens of each class name.
        n_ctx: number of context slots right after SOS.
    """
    token_ids: Tensor
    embeddings: Tensor
    eot_index: Tensor
    name_lengths: Tensor
    n_ctx: int

    @property
    def num_classes(self) -> int:
        return self.token_ids.shape[0]

    @property
    def prefix(self) -> Tensor:
        """(C, 1, Dt) the SOS embedding."""
        return self.embeddings[:, :1]

    @property
    def suffix(self) -> Tensor:
        """(C, L-1-M, Dt) class name, '.', EOT (and padding)."""
        return self.embeddings[:, 1 + self.n_ctx:]


def build_class_tokens(clip, classnames: Sequence[str],
                       n_ctx: int) -> ClassTokens:
    """Tokenize ``"X X .. X <name>."`` for every class (one batched call).

    Args:
        clip: a :class:`~mmpl.clip.FrozenCLIP`.
        classnames: C class names (underscores become spaces).
        n_ctx: number of context slots after SOS.
    """
    names = [readable_classname(n) for n in classnames]
    placeholder = ' '.join(['X'] * n_ctx)
    texts = [f'{placeholder} {n}.'.strip() for n in names]
    token_ids = clip.tokenize(texts)  # (C, 77)
    eot_index = clip.eot_index(token_ids)
    if int(eot_index.max()) >= token_ids.shape[1] - 1:
        long_names = [n for n, e in zip(names, eot_index.tolist())
                      if e >= token_ids.shape[1] - 1]
        raise ConfigError(f'class prompts longer than the text context '
                          f'({token_ids.shape[1]} tokens): {long_names[:3]}')
    if clip.cut_after_eot:
        token_ids = token_ids[:, :int(eot_index.max()) + 1]
    name_ids = clip.tokenize(names)
    name_lengths = clip.eot_index(name_ids) - 1  # minus SOS
    return ClassTokens(
        token_ids=token_ids,
        embeddings=clip.embed_tokens(token_ids),
        eot_index=eot_index,
        name_lengths=name_lengths.to(token_ids.device),
        n_ctx=n_ctx)


def class_prompt_texts(template: str, classnames: Sequence[str]) -> list:
    """Hand-crafted prompts, e.g. ``'a photo of a {}.'`` for each class."""
    return [template.format(readable_classname(n)) for n in classnames]


def context_init_embedding(clip, text: str, n_ctx: int) -> Tensor:
    """(M, Dt) embedding of an initialisation phrase such as 'a photo of a'.

    Raises ValueError when the phrase does not have exactly ``n_ctx`` tokens.
    """
    ids = clip.tokenize([text])
    n_tokens = int(clip.eot_index(ids)[0]) - 1
    if n_tokens != n_ctx:
        raise ConfigError(
            f'ctx_init {text!r} has {n_tokens} tokens but n_ctx={n_ctx}; '
            'make them equal or set ctx_init=None')
    return clip.embed_tokens(ids)[0, 1:1 + n_ctx].clone()

