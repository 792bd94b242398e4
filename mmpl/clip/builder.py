"""Build a frozen open_clip model, offline first.

One place decides how weights are found and which activation they need:

* ``pretrained=None``: random initialisation (benchmarks, smoke runs, tests).
* ``pretrained='/path/file'``: a local file; never touches the network.
  ``.safetensors``, a state dict (``torch.load(weights_only=True)``), or
  OpenAI's original TorchScript ``.pt`` archive.
* ``pretrained='openai'`` (or any open_clip tag): open_clip's download cache.
* ``pretrained='mmpl:shapes-vit'``: weights shipped inside mmpl (the tiny
  CLIP of the embedded benchmark, see ``mmpl/clip/weights/README.md``).

OpenAI weights were trained with QuickGELU. open_clip >= 2.29 builds
``nn.GELU`` for ``ViT-B-16`` + ``openai`` and only warns, which silently costs
accuracy; here the OpenAI tag and TorchScript archives force QuickGELU, and a
local state-dict file must say which activation it was trained with
(``quick_gelu=True|False``) unless the architecture name already does.
"""
import difflib
import os
import os.path as osp
import zipfile
from typing import Optional

import open_clip
import torch
from torch import nn

from .errors import CLIPBuildError

_MODEL_CONFIG_DIR = osp.join(osp.dirname(__file__), 'model_configs')
_WEIGHTS_DIR = osp.join(osp.dirname(__file__), 'weights')
#: weights shipped with mmpl: ``pretrained='mmpl:<name>'``
PACKAGED_PREFIX = 'mmpl:'


def resolve_packaged_weights(pretrained: Optional[str]) -> Optional[str]:
    """``'mmpl:shapes-vit'`` -> the path of mmpl's shipped weight file
    ``mmpl/clip/weights/mmpl-shapes-vit.pt``; other values unchanged."""
    if pretrained is None or not pretrained.startswith(PACKAGED_PREFIX):
        return pretrained
    name = pretrained[len(PACKAGED_PREFIX):]
    path = osp.join(_WEIGHTS_DIR, f'mmpl-{name}.pt')
    if not osp.isfile(path):
        shipped = sorted(f[5:-3] for f in os.listdir(_WEIGHTS_DIR)
                         if f.startswith('mmpl-') and f.endswith('.pt')) \
            if osp.isdir(_WEIGHTS_DIR) else []
        raise CLIPBuildError(f'no packaged weights {pretrained!r}; shipped: '
                             f'{[PACKAGED_PREFIX + n for n in shipped]}')
    return path
_REGISTERED_CONFIG_DIR = False


def register_mmpl_model_configs() -> None:
    """Make mmpl's own architectures (e.g. ``mmpl-tiny-vit``) known to
    open_clip. Idempotent."""
    global _REGISTERED_CONFIG_DIR
    if not _REGISTERED_CONFIG_DIR:
        open_clip.add_model_config(_MODEL_CONFIG_DIR)
        _REGISTERED_CONFIG_DIR = True


def check_arch(arch: str) -> None:
    """Raise one clear line when ``arch`` is not an open_clip architecture."""
    register_mmpl_model_configs()
    models = open_clip.list_models()
    if arch in models:
        return
    close = difflib.get_close_matches(arch, models, n=5, cutoff=0.5)
    hint = (f' Did you mean one of {close}?' if close else
            f' Valid names include {models[:8]} ... '
            f'(all {len(models)}: open_clip.list_models()).')
    raise CLIPBuildError(
        f'Unknown CLIP architecture {arch!r}.{hint}')


def _looks_like_path(pretrained: str) -> bool:
    return (os.sep in pretrained or pretrained.startswith('.')
            or pretrained.endswith(('.pt', '.pth', '.bin', '.safetensors')))


def _is_torchscript_archive(path: str) -> bool:
    """OpenAI's original ``ViT-B-16.pt`` is a TorchScript zip archive."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith('constants.pkl') or '/code/' in n
                   for n in zf.namelist())


def _resolve_quick_gelu(arch: str, pretrained: Optional[str],
                        quick_gelu: Optional[bool], is_torchscript: bool,
                        is_local: bool) -> bool:
    """The activation the weights were trained with, or a clear error.

    QuickGELU is required by OpenAI weights (TorchScript archives) and by
    every open_clip tag whose pretrained config says so (``openai``, some
    LAION-400M, MetaCLIP, DFN tags ...); an architecture whose own config
    says ``quick_gelu`` (``*-quickgelu``) cannot be switched to GELU.
    """
    arch_cfg = open_clip.get_model_config(arch) or {}
    arch_has_quickgelu = bool(arch_cfg.get('quick_gelu', False))
    tag_cfg = {} if (is_local or pretrained is None) else (
        open_clip.get_pretrained_cfg(arch, pretrained) or {})
    weights_need_quickgelu = is_torchscript or bool(
        tag_cfg.get('quick_gelu', False))
    if weights_need_quickgelu:
        if quick_gelu is False:
            raise CLIPBuildError(
                f'{pretrained!r} weights were trained with QuickGELU; remove '
                f'quick_gelu=False (or use {arch}-quickgelu).')
        return True
    if quick_gelu is False and arch_has_quickgelu:
        raise CLIPBuildError(
            f'{arch!r} is a QuickGELU architecture; quick_gelu=False cannot '
            'change it (use the architecture name without -quickgelu).')
    if quick_gelu is not None:
        return quick_gelu
    if is_local and not arch_has_quickgelu:
        raise CLIPBuildError(
            f'Local CLIP weights {pretrained!r} with arch {arch!r}: set '
            'quick_gelu=True if they are OpenAI weights (converted to a '
            'state dict) or quick_gelu=False otherwise; a wrong activation '
            'silently costs accuracy.')
    return False


def _load_local_weights(model: nn.Module, path: str,
                        is_torchscript: bool) -> None:
    if is_torchscript:
        state_dict = torch.jit.load(path, map_location='cpu').state_dict()
        for key in ('input_resolution', 'context_length', 'vocab_size'):
            state_dict.pop(key, None)
        model.load_state_dict(state_dict)
    else:
        open_clip.load_checkpoint(model, path, weights_only=True)


def weight_source(arch: str, tag: str) -> str:
    """Where the weights of ``arch``/``tag`` can be fetched, in words."""
    cfg = open_clip.get_pretrained_cfg(arch, tag) or {}
    where = []
    if cfg.get('url'):
        where.append(f'download {cfg["url"]}')
    if cfg.get('hf_hub'):
        where.append('or open_clip_pytorch_model.bin from the Hugging Face '
                     f'repo {cfg["hf_hub"].rstrip("/")}')
    return (' '.join(where) + '.') if where else 'see open_clip\'s ' \
        'pretrained list.'


def build_open_clip(arch: str,
                    pretrained: Optional[str] = None,
                    quick_gelu: Optional[bool] = None,
                    cache_dir: Optional[str] = None) -> nn.Module:
    """Build the open_clip model ``arch`` with ``pretrained`` weights, frozen
    and in eval mode.

    Raises:
        CLIPBuildError: unknown architecture, missing weight file, unknown
            tag, weights that cannot be fetched offline, or an ambiguous
            activation for a local file. Always one line saying what to do.
    """
    check_arch(arch)
    if pretrained is not None and pretrained.startswith(PACKAGED_PREFIX):
        # mmpl trained these with the architecture's own activation
        quick_gelu = bool(quick_gelu)
        pretrained = resolve_packaged_weights(pretrained)
    is_local = pretrained is not None and (
        osp.isfile(pretrained) or _looks_like_path(pretrained))
    if is_local and not osp.isfile(pretrained):
        raise CLIPBuildError(
            f'CLIP weights not found: {pretrained!r} does not exist. Put the '
            f'{arch} weight file there (e.g. OpenAI\'s ViT-B-16.pt or '
            'open_clip_pytorch_model.bin from a machine with network), or '
            'set model.clip.pretrained to its path.')
    is_torchscript = is_local and _is_torchscript_archive(pretrained)
    force_quick_gelu = _resolve_quick_gelu(arch, pretrained, quick_gelu,
                                           is_torchscript, is_local)

    if pretrained is not None and not is_local:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        if pretrained not in tags:
            raise CLIPBuildError(
                f'Unknown pretrained tag {pretrained!r} for {arch!r}; valid '
                f'tags: {tags or "none (use a local file)"}.')

    if is_local or pretrained is None:
        model = open_clip.create_model(
            arch, pretrained=None, force_quick_gelu=force_quick_gelu)
        if is_local:
            _load_local_weights(model, pretrained, is_torchscript)
    else:
        try:
            model = open_clip.create_model(
                arch, pretrained=pretrained,
                force_quick_gelu=force_quick_gelu, cache_dir=cache_dir)
        except Exception:  # network or cache failure
            raise CLIPBuildError(
                f'Cannot load {arch}/{pretrained} weights offline: '
                f'{weight_source(arch, pretrained)} Put the file on this '
                'machine and set model.clip.pretrained to its path.') from None
    model.requires_grad_(False)
    model.eval()
    return model
