"""Checkpoints of the authors' code (Dassl trainers) -> mmpl parameter names.

The official CoOp, CoCoOp, KgCoOp, MaPLe and IVLP/PromptSRC trainers save one
file per registered model through Dassl, ``<dir>/<name>/model.pth.tar-<E>``
(plus a text file ``checkpoint`` naming it), holding ``{'state_dict',
'epoch', 'optimizer', 'scheduler', 'val_result'}``:

============  =========================  ======================================
layout        registered name            ``state_dict``
============  =========================  ======================================
coop          ``prompt_learner``         ``ctx`` (M, Dt) or (C, M, Dt) (CSC),
                                         ``token_prefix/suffix``
cocoop        ``prompt_learner``         + ``meta_net.linear1/linear2``
kgcoop        ``prompt_learner``         + ``bias_vectors``,
                                         ``meta_net.linear1`` (never used in
                                         the forward pass, never trained)
maple         ``MultiModalPromptLearner``  the whole ``CustomCLIP``:
                                         ``prompt_learner.{ctx, proj,
                                         compound_prompts_text.i,
                                         compound_prompt_projections.i}`` +
                                         the frozen CLIP
ivlp          ``VLPromptLearner``        the whole ``CustomCLIP``:
                                         ``prompt_learner.ctx``,
                                         ``image_encoder.VPT``,
                                         ``{image,text}_encoder.transformer.
                                         resblocks.i.VPT_shallow`` + the
                                         frozen CLIP (IVLP; PromptSRC also
                                         ``prompt_learner.ZS_image_encoder``,
                                         a frozen copy of the image tower)
============  =========================  ======================================

``token_prefix``/``token_suffix`` are frozen embeddings of the saving run's
class names and the frozen CLIP is mmpl's own: both are dropped, as the
official ``load_model`` drops them. The ivlp layout is read from the
authors' code (``ResidualAttentionBlock_IVLP.VPT_shallow``, the vision
tower's ``VPT``) and tested on the official IVLP and PromptSRC sample
checkpoints of the golden fixtures.

Real Dassl files pickle the learning-rate scheduler's successor
(``torch.optim.lr_scheduler.CosineAnnealingLR``, with the optimizer and its
parameter tensors inside), so ``torch.load(weights_only=True)`` refuses them.
:func:`load_official_checkpoint` reads them without running pickled code:
tensors and plain containers are rebuilt, every other object becomes an inert
placeholder (only ``state_dict`` and ``epoch`` are used).
"""
import os.path as osp
import pickle
import re
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..utils.errors import CheckpointError

#: official layouts this module converts
OFFICIAL_LAYOUTS = ('coop', 'cocoop', 'kgcoop', 'maple', 'ivlp')
#: Dassl's registered model name per layout (the checkpoint's sub-folder)
DASSL_MODEL_NAMES = ('prompt_learner', 'MultiModalPromptLearner',
                     'VLPromptLearner')


class OfficialCheckpointError(CheckpointError):
    """An official checkpoint cannot be read or does not fit the model."""


class _Inert:
    """Stands in for any pickled object outside the tensor allow-list: takes
    any arguments and state, runs nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Inert()

    def __setstate__(self, state):
        pass


def _inert_unpickler():
    from torch._weights_only_unpickler import _get_allowed_globals
    allowed = _get_allowed_globals()

    class InertUnpickler(pickle.Unpickler):

        def find_class(self, module, name):
            obj = allowed.get(f'{module}.{name}')
            if obj is not None:
                return obj
            return _Inert

    class Module:  # what torch.load expects of ``pickle_module``
        Unpickler = InertUnpickler
        __name__ = 'mmpl_inert_pickle'

        @staticmethod
        def load(file, **kwargs):
            # the legacy (non-zip) format reads its magic number, protocol,
            # system info and storage keys with ``pickle_module.load``: each
            # is a pickle of its own and must be as inert as the main one
            return InertUnpickler(file, **kwargs).load()

    return Module


def _keys_hint(ckpt) -> str:
    """' with keys [...]' (the first six) for a dict, else ''."""
    return (' with keys ' + str(sorted(ckpt)[:6])
            if isinstance(ckpt, dict) else '')


def checkpoint_file(path: str) -> str:
    """The checkpoint file a user names: a file, a Dassl model folder
    (``.../prompt_learner``, read its ``checkpoint`` file) or an output
    folder holding one of those."""
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise OfficialCheckpointError(
            f'official checkpoint not found: {path!r} is neither a file nor '
            'a folder. Give model.pth.tar-<epoch> or its output folder')
    for folder in [path] + [osp.join(path, n) for n in DASSL_MODEL_NAMES]:
        pointer = osp.join(folder, 'checkpoint')
        if osp.isfile(pointer):
            with open(pointer, encoding='utf-8') as f:
                name = f.read().strip()
            file = osp.join(folder, name)
            if osp.isfile(file):
                return file
            raise OfficialCheckpointError(
                f'{pointer} names {name!r}, which is not in {folder}. Give '
                'the model.pth.tar-<epoch> file itself')
    raise OfficialCheckpointError(
        f'no Dassl checkpoint in {path!r}: expected a "checkpoint" file in '
        f'it or in one of {list(DASSL_MODEL_NAMES)}. Give the '
        'model.pth.tar-<epoch> file itself')


def load_official_checkpoint(path: str) -> dict:
    """Read a Dassl checkpoint (file or folder) without running pickled
    code. Returns the dict with ``state_dict`` (tensors) and ``epoch``."""
    file = checkpoint_file(path)
    try:
        try:
            ckpt = torch.load(file, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError as exc:
            if 'Unsupported global' not in str(exc):
                raise
            # a real Dassl file: the scheduler's pickled successor
            ckpt = torch.load(file, map_location='cpu', weights_only=False,
                              pickle_module=_inert_unpickler())
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else \
            type(exc).__name__
        raise OfficialCheckpointError(
            f'cannot read {file}: {first}. The file is corrupt or truncated; '
            'copy it again') from exc
    if not isinstance(ckpt, dict) or not isinstance(
            ckpt.get('state_dict'), dict):
        raise OfficialCheckpointError(
            f'{file} is not a Dassl checkpoint: no "state_dict" dict '
            f'(found {type(ckpt).__name__}'
            f'{_keys_hint(ckpt)}'
            '). Give the model.pth.tar-<epoch> file of the authors\' code')
    return ckpt


def _prompt_learner_only(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """CoOp-family tensors named as in the whole ``CustomCLIP``
    (``prompt_learner.ctx``, e.g. a live official model's parameters) ->
    names of the saved ``prompt_learner`` module (``ctx``)."""
    if 'prompt_learner.ctx' not in state_dict or \
            'prompt_learner.proj.weight' in state_dict or any(
                'VPT' in k for k in state_dict):
        return state_dict
    return {k[len('prompt_learner.'):]: v for k, v in state_dict.items()
            if k.startswith('prompt_learner.')}


def detect_layout(state_dict: Dict[str, Tensor]) -> str:
    """Which official prompt learner saved ``state_dict``."""
    keys = set(state_dict)
    if any('VPT_shallow' in k for k in keys) or 'image_encoder.VPT' in keys:
        return 'ivlp'
    if 'prompt_learner.proj.weight' in keys:
        return 'maple'
    if 'ctx' in keys:
        if 'bias_vectors' in keys:
            return 'kgcoop'
        if 'meta_net.linear2.weight' in keys:
            return 'cocoop'
        if not any(k.startswith('meta_net.') for k in keys):
            return 'coop'
    raise OfficialCheckpointError(
        'unknown official checkpoint layout: its state_dict has '
        f'{sorted(keys)[:8]}{" ..." if len(keys) > 8 else ""}; mmpl converts '
        f'the layouts {list(OFFICIAL_LAYOUTS)} (CoOp, CoCoOp, KgCoOp, MaPLe, '
        'IVLP/PromptSRC prompt learners)')


# MaPLe and IVLP save the whole CustomCLIP: the class-name buffers and the
# frozen CLIP go
_WHOLE_MODEL_DROPS = [(r'prompt_learner\.token_(prefix|suffix)', None),
                      (r'(image_encoder|text_encoder)\..*|logit_scale', None)]
#: the CoOp family's learnable context, and its class-name buffers (dropped)
_CTX = (r'ctx', 'text_prompt.ctx')
_CLASS_BUFFERS = (r'token_(prefix|suffix)', None)
_RULES = {
    # layout: [(official regex, mmpl name template)]; None = drop
    'coop': [_CTX, _CLASS_BUFFERS],
    # meta_net.linear1 / linear2 -> layers 0 and 2 of mmpl's
    # Sequential(Linear, ReLU, Linear)
    'cocoop': [_CTX,
               (r'meta_net\.linear([12])\.(weight|bias)',
                lambda m: (f'text_prompt.meta_net.{2 * int(m.group(1)) - 2}'
                           f'.{m.group(2)}')),
               _CLASS_BUFFERS],
    'kgcoop': [_CTX,
               (r'bias_vectors|meta_net\.linear1\.(weight|bias)', None),
               (r'token_(prefix|suffix|midfix)', None)],
    'maple': [(r'prompt_learner\.ctx', 'text_prompt.ctx'),
              (r'prompt_learner\.proj\.(weight|bias)',
               r'text_prompt.proj.\1'),
              (r'prompt_learner\.compound_prompts_text\.(\d+)',
               r'text_prompt.deep_text.\1'),
              (r'prompt_learner\.compound_prompt_projections\.(\d+)\.'
               r'(weight|bias)', r'text_prompt.deep_proj.\1.\2'),
              ] + _WHOLE_MODEL_DROPS,
    'ivlp': [(r'prompt_learner\.ctx', 'text_prompt.ctx'),
             (r'image_encoder\.VPT', 'text_prompt.visual.0'),
             (r'image_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow',
              lambda m: f'text_prompt.visual.{int(m.group(1))}'),
             (r'text_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow',
              lambda m: f'text_prompt.deep_text.{int(m.group(1)) - 1}'),
             # PromptSRC: the frozen prompt-free copy of the image tower
             (r'prompt_learner\.ZS_image_encoder\..*', None),
             ] + _WHOLE_MODEL_DROPS,
}


def official_to_mmpl(state_dict: Dict[str, Tensor], layout: str = None
                     ) -> Tuple[str, Dict[str, Tensor], List[str]]:
    """Map an official prompt learner's ``state_dict`` to mmpl names.

    Args:
        state_dict: the checkpoint's (or a live official model's) tensors,
            official names; a leading ``module.`` is ignored.
        layout: one of :data:`OFFICIAL_LAYOUTS`; None detects it.

    Returns:
        the layout, ``{mmpl name: tensor}`` of the learnable tensors, and the
        official keys dropped (class-name buffers, frozen CLIP, unused).
    """
    state_dict = {re.sub(r'^module\.', '', k): v
                  for k, v in state_dict.items()}
    layout = layout or detect_layout(_prompt_learner_only(state_dict))
    if layout in ('coop', 'cocoop', 'kgcoop'):
        state_dict = _prompt_learner_only(state_dict)
    if layout not in _RULES:
        raise OfficialCheckpointError(
            f'unknown layout {layout!r}; use one of {list(OFFICIAL_LAYOUTS)}')
    mapped, dropped = {}, []
    for key, value in state_dict.items():
        for pattern, target in _RULES[layout]:
            match = re.fullmatch(pattern, key)
            if match is None:
                continue
            if target is None:
                dropped.append(key)
            elif callable(target):
                mapped[target(match)] = value
            else:
                mapped[match.expand(target)] = value
            break
        else:
            raise OfficialCheckpointError(
                f'official {layout} checkpoint has an unexpected tensor '
                f'{key!r}; it is not a {layout} prompt learner of the '
                "authors' code (or a newer version of it)")
    return layout, mapped, dropped


def fit_to_model(mapped: Dict[str, Tensor], model, layout: str,
                 source: str = 'the official checkpoint') -> Dict[str, Tensor]:
    """Check ``mapped`` against the model's trainable parameters (same keys,
    same shapes) and cast to their dtypes; one line on the first mismatch."""
    params = {k: p for k, p in model.named_parameters() if p.requires_grad}
    method = getattr(model, 'method_name', '?')
    use = 'Use the config of the method that trained it'
    for keys, says in (
            (sorted(set(mapped) - set(params)),
             f'holds {{}}, which the model ({method}) does not have. {use} '
             '(the prompt module, depth, n_ctx)'),
            (sorted(set(params) - set(mapped)),
             f'lacks {{}} of the model ({method}). {use} (depth, '
             'guidance=none for IVLP/PromptSRC)')):
        if keys:
            listed = f'{keys[:3]}{" ..." if len(keys) > 3 else ""}'
            raise OfficialCheckpointError(
                f'{source} ({layout}) ' + says.format(listed))
    for key, value in mapped.items():
        if value.shape != params[key].shape:
            raise OfficialCheckpointError(
                f'{source} ({layout}): {key} has shape {tuple(value.shape)}, '
                f'the model {tuple(params[key].shape)}. Match the config to '
                'the official run (n_ctx, depth, class count for CSC, the '
                'CLIP architecture)')
    return {k: v.to(params[k].dtype) for k, v in mapped.items()}


def convert_official_checkpoint(source: str, model_cfg: dict,
                                layout: str = None) -> dict:
    """An official checkpoint -> an mmpl checkpoint for the model of
    ``model_cfg`` (a ``PromptCLIPClassifier`` config).

    The model is built with random CLIP weights only to read the prompt
    parameters' names and shapes; the checkpoint's meta names the config's
    CLIP weights. Official checkpoints carry no class names: the
    evaluation's dataset sets them (as the official code does).

    Returns:
        ``{'state_dict': {mmpl name: tensor}, 'meta': {'mmpl': rebuild meta,
        'converted_from': {...}}}``, loadable with ``weights_only=True`` by
        ``tools/test.py`` and ``load_from``.
    """
    from mmpretrain.registry import MODELS
    ckpt = load_official_checkpoint(source)
    layout, mapped, dropped = official_to_mmpl(ckpt['state_dict'], layout)
    cfg = dict(model_cfg)
    clip = dict(cfg.get('clip', {}))
    pretrained = clip.get('pretrained')
    clip['pretrained'] = None  # shapes only; no weight file needed here
    clip.pop('quick_gelu', None)
    cfg['clip'] = clip
    model = MODELS.build(cfg)
    state_dict = fit_to_model(mapped, model, layout,
                              f'official checkpoint {source!r}')
    meta = model.checkpoint_meta()
    meta['pretrained'] = pretrained
    if isinstance(meta.get('model'), dict):  # the rebuild config (mmpl.apis)
        meta['model'] = dict(meta['model'], clip=dict(model_cfg.get('clip',
                                                                    {})))
    return dict(state_dict=state_dict,
                meta=dict(mmpl=meta, converted_from=dict(
                    file=checkpoint_file(source), layout=layout,
                    epoch=ckpt.get('epoch'), dropped=len(dropped))))
