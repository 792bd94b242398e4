"""CLIP weight files as users have them: read, identify, check against the
architecture, one actionable line when a file is broken.

Kinds (:attr:`WeightFile.kind`):

* ``torchscript``: OpenAI's original ``ViT-B-16.pt`` (a TorchScript archive;
  QuickGELU).
* ``openai_state_dict``: OpenAI's weights as a state dict: OpenAI's tensor
  names (the ones open_clip's ``CLIP`` uses) stored in fp16, the form OpenAI
  ships them in (QuickGELU). A fp16 state dict of other weights is taken for
  OpenAI's too; ``quick_gelu=False`` says otherwise.
* ``open_clip_checkpoint``: a checkpoint of open_clip's training script
  (``{'epoch', 'name', 'state_dict', ...}``, ``module.`` prefixes): trained
  with the architecture's own activation.
* ``state_dict``: a plain fp32 state dict (``torch.save(model.state_dict())``);
  the activation cannot be read from it.
* ``safetensors``: a ``.safetensors`` file; an ``open_clip_config.json``
  beside it (a Hugging Face download folder) tells the activation.
"""
import json
import os.path as osp
import pickle
import zipfile
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from .errors import CLIPBuildError

WEIGHT_KINDS = ('torchscript', 'openai_state_dict', 'open_clip_checkpoint',
                'state_dict', 'safetensors')
# tensors every OpenAI-layout (open_clip ``CLIP``) state dict has
_OPENAI_KEYS = ('positional_embedding', 'text_projection',
                'token_embedding.weight', 'ln_final.weight')


@dataclass
class WeightFile:
    """A read CLIP weight file.

    Attributes:
        path: the file.
        kind: one of :data:`WEIGHT_KINDS`.
        state_dict: its tensors, open_clip names (``module.`` stripped).
        quick_gelu: the activation the file says its weights need (True:
            QuickGELU, False: GELU), or None when it cannot tell.
        reason: why, in words (for the log line).
    """
    path: str
    kind: str
    state_dict: Dict[str, Tensor]
    quick_gelu: Optional[bool] = None
    reason: str = ''


def is_torchscript_archive(path: str) -> bool:
    """OpenAI's original ``ViT-B-16.pt`` is a TorchScript zip archive."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith('constants.pkl') or '/code/' in n
                       for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _broken(path: str, what: str) -> CLIPBuildError:
    return CLIPBuildError(
        f'CLIP weights {path!r} {what}. Copy the file again from its source '
        '(or set model.clip.pretrained to a good copy)')


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_torch_file(path: str):
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        if 'Unsupported global' in message or 'weights_only' in message \
                and 'GLOBAL' in message:
            raise CLIPBuildError(
                f'CLIP weights {path!r} hold pickled Python objects, not '
                'tensors (e.g. a whole saved model). Save its state dict '
                '(torch.save(model.state_dict(), path)) and use that') \
                from exc
        raise _broken(path, 'are not a PyTorch, TorchScript or safetensors '
                      f'weight file ({_first_line(exc)})') from exc
    except Exception as exc:  # whatever torch.load makes of a broken file
        message = _first_line(exc)
        with open(path, 'rb') as f:
            zip_header = f.read(4) == b'PK\x03\x04'  # torch.save's format
        if (zip_header and not zipfile.is_zipfile(path)) or isinstance(
                exc, EOFError) or 'central directory' in message:
            raise _broken(path, f'are truncated ({message})') from exc
        if not zip_header:
            raise _broken(path, 'are not a PyTorch, TorchScript or '
                          f'safetensors weight file ({message})') from exc
        raise _broken(path, f'are corrupt ({message})') from exc


def _load_safetensors(path: str) -> Dict[str, Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError as exc:  # pragma: no cover - open_clip depends on it
        raise CLIPBuildError(f'{path!r} is a safetensors file; pip install '
                             'safetensors') from exc
    try:
        return load_file(path, device='cpu')
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise _broken(path, f'are a corrupt or truncated safetensors file '
                      f'({_first_line(exc)})') from exc


def _hub_config_quick_gelu(path: str) -> Optional[bool]:
    """``quick_gelu`` of an ``open_clip_config.json`` beside the file."""
    config = osp.join(osp.dirname(path), 'open_clip_config.json')
    if not osp.isfile(config):
        return None
    try:
        with open(config, encoding='utf-8') as f:
            model_cfg = json.load(f).get('model_cfg', {})
    except (OSError, ValueError):
        return None
    return bool(model_cfg.get('quick_gelu', False))


def _strip_module(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    if state_dict and all(k.startswith('module.') for k in state_dict):
        return {k[len('module.'):]: v for k, v in state_dict.items()}
    return state_dict


def read_weight_file(path: str, arch_quick_gelu: bool) -> WeightFile:
    """Read and identify a CLIP weight file.

    Args:
        path: an existing file.
        arch_quick_gelu: the architecture's own activation is QuickGELU (what
            an open_clip training checkpoint of that architecture used).

    Raises:
        CLIPBuildError: the file is corrupt, truncated, not a weight file or
            holds no CLIP tensors (one line naming the file).
    """
    if path.endswith('.safetensors'):
        hub = _hub_config_quick_gelu(path)
        return WeightFile(path, 'safetensors', _load_safetensors(path), hub,
                          'open_clip_config.json beside it' if hub is not None
                          else '')
    if is_torchscript_archive(path):
        try:
            archive = torch.jit.load(path, map_location='cpu')
        except RuntimeError as exc:
            raise _broken(path, f'are a broken TorchScript archive '
                          f'({_first_line(exc)})') from exc
        state_dict = archive.state_dict()
        for key in ('input_resolution', 'context_length', 'vocab_size'):
            state_dict.pop(key, None)
        return WeightFile(path, 'torchscript', state_dict, True,
                          "OpenAI's TorchScript archive")
    content = _load_torch_file(path)
    if isinstance(content, dict) and isinstance(content.get('state_dict'),
                                                dict):
        return WeightFile(path, 'open_clip_checkpoint',
                          _strip_module(content['state_dict']),
                          arch_quick_gelu,
                          "an open_clip training checkpoint: the "
                          "architecture's own activation")
    if not isinstance(content, dict) or not all(
            isinstance(v, Tensor) for v in content.values()):
        raise CLIPBuildError(
            f'CLIP weights {path!r} are not a state dict (found '
            f'{type(content).__name__}); give a CLIP weight file '
            '(state dict, TorchScript archive or safetensors)')
    state_dict = _strip_module(content)
    floats = [v for v in state_dict.values() if v.is_floating_point()]
    if all(k in state_dict for k in _OPENAI_KEYS) and floats and all(
            v.dtype == torch.float16 for v in floats):
        return WeightFile(path, 'openai_state_dict', state_dict, True,
                          "OpenAI's tensor names in fp16 (OpenAI's weights)")
    hub = _hub_config_quick_gelu(path)
    return WeightFile(path, 'state_dict', state_dict, hub,
                      'open_clip_config.json beside it' if hub is not None
                      else '')


def _mmpl_checkpoint_hint(keys: List[str]) -> str:
    if any(k.startswith(('text_prompt.', 'visual_prompt.', 'feature_tuner.'))
           for k in keys):
        return (' It looks like an mmpl checkpoint (prompt parameters): give '
                'it to tools/test.py as the checkpoint, and the CLIP weights '
                'as model.clip.pretrained')
    return ''


def check_fits(model: nn.Module, weights: WeightFile, arch: str) -> None:
    """One line naming the first tensor that does not fit ``arch``.

    Positional embeddings may differ in length (open_clip resizes them)."""
    mine = model.state_dict()
    theirs = weights.state_dict
    common = [k for k in theirs if k in mine]
    if not common:
        raise CLIPBuildError(
            f'{weights.path!r} holds no tensor of a CLIP {arch} (its keys: '
            f'{sorted(theirs)[:4]}).{_mmpl_checkpoint_hint(list(theirs))}')
    for key in common:
        if 'positional_embedding' in key:
            continue
        if tuple(theirs[key].shape) != tuple(mine[key].shape):
            raise CLIPBuildError(
                f'CLIP weights {weights.path!r} do not fit arch {arch!r}: '
                f'{key} is {tuple(theirs[key].shape)} in the file and '
                f'{tuple(mine[key].shape)} in {arch}. Set model.clip.arch to '
                f'the architecture the weights belong to'
                f'{_guess_arch(theirs)}')


def _guess_arch(state_dict: Dict[str, Tensor]) -> str:
    """' (the file looks like ViT-B-16 ...)' from the file's widths."""
    try:
        import open_clip
        conv = state_dict['visual.conv1.weight']
        dims = dict(width=conv.shape[0], patch_size=conv.shape[-1],
                    layers=len({k.split('.')[3] for k in state_dict
                                if k.startswith('visual.transformer.'
                                                'resblocks.')}),
                    embed_dim=state_dict['text_projection'].shape[1])
    except (KeyError, IndexError, ImportError):
        return ''
    names = []
    for name in open_clip.list_models():
        cfg = open_clip.get_model_config(name) or {}
        vision = cfg.get('vision_cfg', {})
        if (cfg.get('embed_dim') == dims['embed_dim']
                and vision.get('width') == dims['width']
                and vision.get('layers') == dims['layers']
                and vision.get('patch_size') == dims['patch_size']):
            names.append(name)
    if not names:
        return (f' (the file has a {dims["layers"]}-layer ViT of width '
                f'{dims["width"]}, patch {dims["patch_size"]})')
    return f' (the file fits {names[:4]})'
