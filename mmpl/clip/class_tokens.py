"""Token layout of class prompts: ``[SOS] X_1 .. X_M <frozen words> <class
name> . [EOT]``.

The ``M`` tokens after SOS are where a prompt module writes its context
vectors; everything else is the frozen embedding of the prompt text. With an
initialisation phrase (``ctx_init``) the prompt text is the phrase followed by
the class name, as in the authors' code (CoOp, CoCoOp, KgCoOp, MaPLe): the
phrase's first ``M`` tokens are the learnable slots and its remaining tokens
stay frozen (MaPLe, M=2, 'a photo of a' -> ``[SOS] c1 c2 of a <name> .
[EOT]``). Without a phrase the slots are placeholders (``X``).
Sequences are cut after the last EOT of the class set (exact under the
causal mask), so prompt modules never build 77-token tensors.
"""
import string
from dataclasses import dataclass
from typing import Optional, Sequence

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
        n_frozen_context: tokens of the initialisation phrase after the
            ``n_ctx`` slots, kept frozen before the class name (0 when the
            phrase has exactly ``n_ctx`` tokens or there is none).
    """
    token_ids: Tensor
    embeddings: Tensor
    eot_index: Tensor
    name_lengths: Tensor
    n_ctx: int
    n_frozen_context: int = 0

    @property
    def num_classes(self) -> int:
        return self.token_ids.shape[0]

    @property
    def prefix(self) -> Tensor:
        """(C, 1, Dt) the SOS embedding."""
        return self.embeddings[:, :1]

    @property
    def suffix(self) -> Tensor:
        """(C, L-1-M, Dt) frozen phrase words, class name, '.', EOT (and
        padding)."""
        return self.embeddings[:, 1 + self.n_ctx:]


def readable_phrase(phrase: Optional[str]) -> Optional[str]:
    """An initialisation phrase as it is tokenized: underscores become spaces
    (``--cfg-options`` cannot carry spaces: ``ctx_init=a_photo_of_a``),
    surrounding blanks dropped; None or empty -> None."""
    if phrase is None:
        return None
    phrase = ' '.join(phrase.replace('_', ' ').split())
    return phrase or None


def phrase_token_count(clip, phrase: str) -> int:
    """Number of BPE tokens of ``phrase`` (without SOS/EOT)."""
    return int(clip.eot_index(clip.tokenize([phrase]))[0]) - 1


def build_class_tokens(clip, classnames: Sequence[str], n_ctx: int,
                       context_phrase: Optional[str] = None) -> ClassTokens:
    """Tokenize the class prompts (one batched call): ``"<phrase> <name>."``
    with an initialisation phrase, else ``"X X .. X <name>."``.

    Args:
        clip: a :class:`~mmpl.clip.FrozenCLIP`.
        classnames: C class names (underscores become spaces).
        n_ctx: number of context slots after SOS (the phrase's first
            ``n_ctx`` tokens).
        context_phrase: the prompt module's initialisation phrase
            (``ctx_init``); its tokens after the first ``n_ctx`` stay in the
            prompt as frozen words. It needs at least ``n_ctx`` tokens.
    """
    names = [readable_classname(n) for n in classnames]
    phrase = readable_phrase(context_phrase)
    n_frozen = 0
    if phrase is not None:
        n_frozen = phrase_token_count(clip, phrase) - n_ctx
        if n_frozen < 0:
            raise ValueError(f'ctx_init {phrase!r} has {n_frozen + n_ctx} '
                             f'tokens, fewer than n_ctx={n_ctx}; use a longer '
                             'phrase or ctx_init=None')
    else:
        phrase = ' '.join(['X'] * n_ctx)
    texts = [f'{phrase} {n}.'.strip() for n in names]
    token_ids = clip.tokenize(texts)  # (C, 77)
    eot_index = clip.eot_index(token_ids)
    if int(eot_index.max()) >= token_ids.shape[1] - 1:
        long_names = [n for n, e in zip(names, eot_index.tolist())
                      if e >= token_ids.shape[1] - 1]
        raise ConfigError(f'class prompts longer than the text context '
                          f'({token_ids.shape[1]} tokens): {long_names[:3]}')
    token_ids = token_ids[:, :int(eot_index.max()) + 1]
    name_ids = clip.tokenize(names)
    name_lengths = clip.eot_index(name_ids) - 1  # minus SOS
    return ClassTokens(
        token_ids=token_ids,
        embeddings=clip.embed_tokens(token_ids),
        eot_index=eot_index,
        name_lengths=name_lengths.to(token_ids.device),
        n_ctx=n_ctx,
        n_frozen_context=n_frozen)


def check_template(template: str) -> None:
    """A prompt template holds exactly one ``{}``, where the class name
    goes, and no other replacement field."""
    try:
        fields = [field for _, field, _, _ in
                  string.Formatter().parse(template) if field is not None]
    except ValueError as exc:  # e.g. a lone '{'
        fields = [str(exc)]
    if fields != ['']:
        raise ConfigError(
            f'prompt template {template!r} must hold exactly one {{}} for '
            'the class name. Write it like "a photo of a {}."')


def class_prompt_texts(template: str, classnames: Sequence[str]) -> list:
    """Hand-crafted prompts, e.g. ``'a photo of a {}.'`` for each class."""
    check_template(template)
    return [template.format(readable_classname(n)) for n in classnames]


def context_init_embedding(clip, phrase: str, n_ctx: int) -> Tensor:
    """(M, Dt) embedding of the first ``n_ctx`` tokens of an initialisation
    phrase such as 'a photo of a' (the authors' rule: CoOp and CoCoOp use all
    its tokens, MaPLe with M=2 'a photo'; the rest of the phrase stays in the
    prompt as frozen words, see :func:`build_class_tokens`).

    Raises ValueError when the phrase has fewer than ``n_ctx`` tokens.
    """
    phrase = readable_phrase(phrase)
    if phrase is None:
        raise ValueError('ctx_init is empty; give a phrase or ctx_init=None')
    ids = clip.tokenize([phrase])
    n_tokens = int(clip.eot_index(ids)[0]) - 1
    if n_tokens < n_ctx:
        raise ConfigError(f'ctx_init {phrase!r} has {n_tokens} tokens, '
                          f'fewer than n_ctx={n_ctx}; use a longer phrase or '
                          'ctx_init=None')
    return clip.embed_tokens(ids)[0, 1:1 + n_ctx].clone()

