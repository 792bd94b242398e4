"""Build a frozen open_clip model, offline first.

One place decides how weights are found and which activation they need:

* ``pretrained=None``: random initialisation (benchmarks, smoke runs, tests).
* ``pretrained='/path/file'``: a local file; never touches the network.
  OpenAI's TorchScript ``.pt`` archive, an OpenAI-format or open_clip state
  dict, an open_clip training checkpoint, or ``.safetensors``
  (:mod:`.weight_files` identifies them and names what is wrong with a broken
  one).
* ``pretrained='openai'`` (or any open_clip tag): open_clip's download cache.
* ``pretrained='mmpl:/path/file.pt'``: a file written by mmpl's tiny-CLIP
  recipe (the project's lab, ``projects/lab``): OpenAI's tensor names in
  fp16, but the architecture's own activation.

OpenAI weights were trained with QuickGELU. open_clip >= 2.29 builds
``nn.GELU`` for ``ViT-B-16`` + ``openai`` and only warns, which silently costs
accuracy; here the OpenAI tag, TorchScript archives and OpenAI-format (fp16)
state dicts force QuickGELU, an open_clip training checkpoint uses its
architecture's activation, a safetensors/state-dict file next to an
``open_clip_config.json`` uses that config's; any other local state-dict file
must say which activation it was trained with (``quick_gelu=True|False``)
unless the architecture name already does.
"""
import contextlib
import difflib
import json
import logging
import os
import os.path as osp
import socket
import tempfile
import urllib.parse
from typing import Optional

import open_clip
import torch
from torch import nn

from .errors import CLIPBuildError
from .weight_files import (WeightFile, check_fits, is_torchscript_archive,
                           read_weight_file)

#: marks a weight file written by mmpl's recipe: ``pretrained='mmpl:<path>'``
RECIPE_PREFIX = 'mmpl:'


def resolve_recipe_weights(pretrained: Optional[str]) -> Optional[str]:
    """``'mmpl:<path>.pt'`` -> ``<path>.pt``, a file written by mmpl's
    tiny-CLIP recipe (``projects/lab/tools/pretrain_tiny_clip.py``: GELU,
    fp16 with OpenAI's names but not OpenAI's weights); other values
    unchanged."""
    if pretrained is None or not pretrained.startswith(RECIPE_PREFIX):
        return pretrained
    path = pretrained[len(RECIPE_PREFIX):]
    if not osp.isfile(path):
        raise CLIPBuildError(f'no mmpl weight file {path!r}; give the '
                             'path of a file written by '
                             'projects/lab/tools/pretrain_tiny_clip.py')
    return path


def resolve_arch(arch: str) -> str:
    """The open_clip architecture name of ``arch``: a name as it is, or the
    path of a model config file (open_clip's JSON: ``embed_dim``,
    ``vision_cfg``, ``text_cfg``; or a Hugging Face ``open_clip_config.json``
    holding them under ``model_cfg``), registered with open_clip under the
    file's stem, which is returned."""
    if not isinstance(arch, str) or not arch.endswith('.json'):
        return arch
    if not osp.isfile(arch):
        raise CLIPBuildError(f'CLIP model config not found: {arch!r}. Give '
                             'an open_clip architecture name or the path of '
                             'its model config (.json)')
    try:
        with open(arch, encoding='utf-8') as f:
            cfg = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CLIPBuildError(f'CLIP model config {arch!r} is not JSON '
                             f'({exc}). Give open_clip\'s model config '
                             'file') from None
    cfg = cfg.get('model_cfg', cfg) if isinstance(cfg, dict) else cfg
    needed = ('embed_dim', 'vision_cfg', 'text_cfg')
    if not isinstance(cfg, dict) or not all(k in cfg for k in needed):
        raise CLIPBuildError(f'{arch!r} is not an open_clip model config: '
                             f'it needs {", ".join(needed)}. Give the JSON '
                             'file open_clip builds the model from')
    name = osp.splitext(osp.basename(arch))[0]
    if open_clip.get_model_config(name) == cfg:
        return name  # registered already (every build reads the file)
    folder = tempfile.mkdtemp(prefix='mmpl-arch-')  # the flat format
    with open(osp.join(folder, name + '.json'), 'w') as f:
        json.dump(cfg, f)
    open_clip.add_model_config(osp.join(folder, name + '.json'))
    return name


def check_arch(arch: str) -> str:
    """Raise one clear line when ``arch`` is not an open_clip architecture
    (a name, or a model config file: :func:`resolve_arch`); returns the
    name."""
    arch = resolve_arch(arch)
    models = open_clip.list_models()
    if arch in models:
        return arch
    close = difflib.get_close_matches(arch, models, n=5, cutoff=0.5)
    hint = (f' Did you mean one of {close}?' if close else
            f' Valid names include {models[:8]} ... '
            f'(all {len(models)}: open_clip.list_models()).')
    raise CLIPBuildError(
        f'Unknown CLIP architecture {arch!r}.{hint}')


def _looks_like_path(pretrained: str) -> bool:
    return (os.sep in pretrained or pretrained.startswith('.')
            or pretrained.endswith(('.pt', '.pth', '.bin', '.safetensors')))


_is_torchscript_archive = is_torchscript_archive  # old name


def _resolve_quick_gelu(arch: str, pretrained: Optional[str],
                        quick_gelu: Optional[bool], weights_need_it: bool,
                        is_local: bool,
                        file_says: Optional[bool] = None) -> bool:
    """The activation the weights were trained with, or a clear error.

    QuickGELU is required by OpenAI weights (``weights_need_it``: a
    TorchScript archive or an OpenAI-format state dict) and by every
    open_clip tag whose pretrained config says so (``openai``, some
    LAION-400M, MetaCLIP, DFN tags ...); an architecture whose own config
    says ``quick_gelu`` (``*-quickgelu``) cannot be switched to GELU;
    ``file_says`` is what a local file tells otherwise (see
    :func:`~mmpl.clip.weight_files.read_weight_file`).
    """
    arch_cfg = open_clip.get_model_config(arch) or {}
    arch_has_quickgelu = bool(arch_cfg.get('quick_gelu', False))
    tag_cfg = {} if (is_local or pretrained is None) else (
        open_clip.get_pretrained_cfg(arch, pretrained) or {})
    weights_need_quickgelu = weights_need_it or bool(
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
    if file_says is not None:
        return file_says or arch_has_quickgelu
    if is_local and not arch_has_quickgelu:
        raise CLIPBuildError(
            f'Local CLIP weights {pretrained!r} with arch {arch!r}: set '
            'quick_gelu=True if they are OpenAI weights (converted to a '
            'state dict) or quick_gelu=False otherwise; a wrong activation '
            'silently costs accuracy.')
    return False


def _load_local_weights(model: nn.Module, weights: WeightFile) -> None:
    """Load a read weight file the way ``open_clip.load_checkpoint`` does
    (third-party conversions, resized positional embeddings), strictly."""
    from open_clip.convert import convert_state_dict
    from open_clip.model import (convert_to_custom_text_state_dict,
                                 resize_pos_embed, resize_text_pos_embed)
    state_dict = convert_state_dict(model, dict(weights.state_dict))
    if 'positional_embedding' in state_dict and not hasattr(
            model, 'positional_embedding'):
        state_dict = convert_to_custom_text_state_dict(state_dict)
    if 'logit_scale' in state_dict and \
            model.logit_scale.ndim != state_dict['logit_scale'].ndim:
        state_dict['logit_scale'] = state_dict['logit_scale'].reshape(
            model.logit_scale.shape)
    if getattr(model, 'logit_bias', None) is not None and \
            'logit_bias' not in state_dict:
        state_dict['logit_bias'] = torch.zeros_like(model.logit_bias)
    resize_pos_embed(state_dict, model)
    resize_text_pos_embed(state_dict, model)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    buffers = dict(model.named_buffers())  # e.g. a traced model's attn_mask
    unexpected = [k for k in unexpected if k not in buffers]
    if missing:
        raise CLIPBuildError(
            f'CLIP weights {weights.path!r} lack {len(missing)} tensors of '
            f'arch {model.__class__.__name__} (e.g. {missing[:3]}): the file '
            'is incomplete or of another architecture; set model.clip.arch '
            'to the architecture of the weights or copy the file again')
    if unexpected:
        raise CLIPBuildError(
            f'CLIP weights {weights.path!r} hold tensors this architecture '
            f'does not have (e.g. {unexpected[:3]}): set model.clip.arch to '
            'the architecture of the weights')


class _DropRandomInitNotice(logging.Filter):
    """open_clip logs 'No pretrained weights loaded ... initialized
    randomly' when it is given no tag, also when mmpl loads a file right
    after: that line would be false."""

    def filter(self, record: logging.LogRecord) -> bool:
        return 'initialized randomly' not in record.getMessage()


@contextlib.contextmanager
def _without_random_init_notice():
    root = logging.getLogger()
    notice = _DropRandomInitNotice()
    root.addFilter(notice)
    for handler in root.handlers:
        handler.addFilter(notice)
    try:
        yield
    finally:
        root.removeFilter(notice)
        for handler in root.handlers:
            handler.removeFilter(notice)


def _check_reachable(arch: str, tag: str, cache_dir: Optional[str]) -> None:
    """Fail at once, not after a minute of download retries, when the
    weights of ``arch``/``tag`` are neither cached nor reachable (the
    Hugging Face host does not answer within 3 s)."""
    hub = (open_clip.get_pretrained_cfg(arch, tag) or {}).get('hf_hub', '')
    if not hub:
        return
    model_id, filename = os.path.split(hub)
    try:
        from huggingface_hub import constants, try_to_load_from_cache
        cached = try_to_load_from_cache(
            model_id, filename or 'open_clip_pytorch_model.bin',
            cache_dir=cache_dir)
        host = urllib.parse.urlparse(constants.ENDPOINT).hostname
    except Exception:  # another huggingface_hub: let open_clip try
        return
    if isinstance(cached, str) or not host:
        return
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError as exc:
        raise CLIPBuildError(
            f'Cannot load {arch}/{tag} weights offline ({host} does not '
            f'answer): {weight_source(arch, tag)} Put the file on this '
            'machine and set model.clip.pretrained to its path.') from exc


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
    arch = check_arch(arch)
    packaged = pretrained is not None and pretrained.startswith(
        RECIPE_PREFIX)
    if packaged:
        # mmpl trained these with the architecture's own activation
        quick_gelu = bool(quick_gelu)
        pretrained = resolve_recipe_weights(pretrained)
    is_local = pretrained is not None and (
        osp.isfile(pretrained) or _looks_like_path(pretrained))
    if is_local and not osp.isfile(pretrained):
        raise CLIPBuildError(
            f'CLIP weights not found: {pretrained!r} does not exist. Put the '
            f'{arch} weight file there (e.g. OpenAI\'s ViT-B-16.pt or '
            'open_clip_pytorch_model.bin from a machine with network), or '
            'set model.clip.pretrained to its path.')
    weights = None
    if is_local:
        arch_cfg = open_clip.get_model_config(arch) or {}
        weights = read_weight_file(pretrained,
                                   bool(arch_cfg.get('quick_gelu', False)))
        if packaged:  # fp16 with OpenAI's names, but not OpenAI's weights
            weights.kind, weights.quick_gelu, weights.reason = (
                'state_dict', None, '')
    try:
        force_quick_gelu = _resolve_quick_gelu(
            arch, pretrained, quick_gelu,
            weights is not None and weights.kind in ('torchscript',
                                                     'openai_state_dict'),
            is_local, weights.quick_gelu if weights is not None else None)
    except CLIPBuildError:
        if weights is not None:  # weights of another architecture: say so
            with _without_random_init_notice():
                check_fits(open_clip.create_model(arch, pretrained=None),
                           weights, arch)
        raise
    if weights is not None and quick_gelu is None and weights.reason:
        from mmengine.logging import print_log
        print_log(f'mmpl: CLIP weights {pretrained}: {weights.reason}; '
                  f'activation {"QuickGELU" if force_quick_gelu else "GELU"}'
                  , logger='current')

    if pretrained is not None and not is_local:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        if pretrained not in tags:
            raise CLIPBuildError(
                f'Unknown pretrained tag {pretrained!r} for {arch!r}; valid '
                f'tags: {tags or "none (use a local file)"}.')

    if is_local:
        with _without_random_init_notice():
            model = open_clip.create_model(
                arch, pretrained=None, force_quick_gelu=force_quick_gelu)
        check_fits(model, weights, arch)
        _load_local_weights(model, weights)
    elif pretrained is None:
        with _without_random_init_notice():  # a root-logger WARNING line
            model = open_clip.create_model(
                arch, pretrained=None, force_quick_gelu=force_quick_gelu)
        from mmengine.logging import print_log
        print_log(f'mmpl: CLIP {arch} with random weights '
                  '(model.clip.pretrained=None)', logger='current',
                  level=logging.DEBUG)
    else:
        _check_reachable(arch, pretrained, cache_dir)
        try:
            model = open_clip.create_model(
                arch, pretrained=pretrained,
                force_quick_gelu=force_quick_gelu, cache_dir=cache_dir)
        except (OSError, RuntimeError) as exc:  # network or cache failure
            raise CLIPBuildError(
                f'Cannot load {arch}/{pretrained} weights offline: '
                f'{weight_source(arch, pretrained)} Put the file on this '
                'machine and set model.clip.pretrained to its path.') from exc
    model.requires_grad_(False)
    model.eval()
    return model
