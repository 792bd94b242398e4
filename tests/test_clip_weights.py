"""CLIP weight files as users have them (``mmpl.clip.weight_files``): each
kind loads with the right activation and no flag; each broken variant is one
line naming the file and what is wrong."""
import copy
import json
import logging

import open_clip
import pytest
import torch

from mmpl.clip import CLIPBuildError, FrozenCLIP
from mmpl.clip.weight_files import read_weight_file
from mmpl.testing import TINY_ARCH

ARCH = 'mmpl-tiny-vit'  # GELU architecture
QUICK = open_clip.transformer.QuickGELU


def _activation(clip):
    return type(clip.model.transformer.resblocks[0].mlp.gelu)


def _one_line(exc_info, *words):
    msg = str(exc_info.value)
    assert msg and '\n' not in msg, msg
    for word in words:
        assert word in msg, msg
    return msg


@pytest.fixture(scope='module')
def source():
    torch.manual_seed(5)
    return open_clip.create_model(ARCH)


@pytest.fixture(scope='module')
def text_ids():
    return open_clip.get_tokenizer(ARCH)(['a photo of a cat.'])


def _same_weights(clip, model):
    mine = clip.model.state_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(mine[k], v.to(mine[k].dtype)), k


def test_openai_format_fp16_state_dict_uses_quickgelu(source, tmp_path):
    """OpenAI's weights as a state dict (OpenAI names, fp16): QuickGELU
    without a flag, on an architecture whose name does not say it."""
    path = str(tmp_path / 'ViT-openai.pt')
    torch.save({k: v.half() for k, v in source.state_dict().items()}, path)
    assert read_weight_file(path, False).kind == 'openai_state_dict'
    clip = FrozenCLIP(arch=ARCH, pretrained=path)
    assert _activation(clip) is QUICK
    _same_weights(clip, copy.deepcopy(source).half())
    with pytest.raises(CLIPBuildError, match='QuickGELU'):
        FrozenCLIP(arch=ARCH, pretrained=path, quick_gelu=False)


def test_torchscript_archive_uses_quickgelu(source, tmp_path, text_ids):
    path = str(tmp_path / 'ViT.pt')
    traced = torch.jit.trace_module(
        source, {'encode_text': text_ids}, check_trace=False)
    torch.jit.save(traced, path)
    assert read_weight_file(path, False).kind == 'torchscript'
    clip = FrozenCLIP(arch=ARCH, pretrained=path)
    assert _activation(clip) is QUICK
    _same_weights(clip, source)


def test_open_clip_training_checkpoint_uses_the_arch_activation(
        source, tmp_path):
    path = str(tmp_path / 'epoch_3.pt')
    torch.save({'epoch': 3, 'name': 'run',
                'state_dict': {f'module.{k}': v
                               for k, v in source.state_dict().items()}},
               path)
    weights = read_weight_file(path, False)
    assert weights.kind == 'open_clip_checkpoint'
    clip = FrozenCLIP(arch=ARCH, pretrained=path)
    assert _activation(clip) is torch.nn.GELU
    _same_weights(clip, source)


def test_safetensors_with_hub_config_uses_its_activation(source, tmp_path):
    safetensors = pytest.importorskip('safetensors.torch')
    path = str(tmp_path / 'open_clip_model.safetensors')
    safetensors.save_file(
        {k: v.contiguous() for k, v in source.state_dict().items()}, path)
    with open(tmp_path / 'open_clip_config.json', 'w') as f:
        json.dump({'model_cfg': {'quick_gelu': True}}, f)
    clip = FrozenCLIP(arch=ARCH, pretrained=path)
    assert _activation(clip) is QUICK
    _same_weights(clip, source)


def test_no_random_initialisation_notice_for_a_loaded_file(
        source, tmp_path, caplog):
    path = str(tmp_path / 'w.pt')
    torch.save(source.state_dict(), path)
    with caplog.at_level(logging.INFO):
        FrozenCLIP(arch=ARCH, pretrained=path, quick_gelu=False)
    assert 'initialized randomly' not in caplog.text


def test_corrupt_file(tmp_path):
    path = tmp_path / 'garbage.pt'
    path.write_bytes(b'this is not a weight file' * 10)
    with pytest.raises(CLIPBuildError) as exc:
        FrozenCLIP(arch=ARCH, pretrained=str(path), quick_gelu=False)
    msg = _one_line(exc, str(path), 'not a PyTorch')
    assert 'quick_gelu' not in msg


def test_truncated_file(source, tmp_path):
    full = tmp_path / 'full.pt'
    torch.save(source.state_dict(), str(full))
    cut = tmp_path / 'cut.pt'
    cut.write_bytes(full.read_bytes()[:full.stat().st_size // 2])
    with pytest.raises(CLIPBuildError) as exc:
        FrozenCLIP(arch=ARCH, pretrained=str(cut))
    msg = _one_line(exc, str(cut), 'truncated')
    assert 'quick_gelu' not in msg


def test_truncated_safetensors(source, tmp_path):
    safetensors = pytest.importorskip('safetensors.torch')
    full = str(tmp_path / 'full.safetensors')
    safetensors.save_file(
        {k: v.contiguous() for k, v in source.state_dict().items()}, full)
    cut = tmp_path / 'cut.safetensors'
    data = open(full, 'rb').read()
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(CLIPBuildError) as exc:
        FrozenCLIP(arch=ARCH, pretrained=str(cut), quick_gelu=False)
    _one_line(exc, str(cut), 'safetensors')


def test_weights_of_another_architecture_name_the_tensor(source, tmp_path):
    path = str(tmp_path / 'tiny.pt')
    torch.save({k: v.half() for k, v in source.state_dict().items()}, path)
    cfg = json.load(open(TINY_ARCH))  # the tiny CLIP with 16 px patches
    cfg['vision_cfg']['patch_size'] = 16
    other = tmp_path / 'other-tiny-vit.json'
    other.write_text(json.dumps(cfg))
    with pytest.raises(CLIPBuildError) as exc:
        FrozenCLIP(arch=str(other), pretrained=path)
    msg = _one_line(exc, path, 'other-tiny-vit', 'in the file', ARCH)
    assert 'quick_gelu' not in msg


def test_mmpl_checkpoint_given_as_clip_weights(tmp_path):
    path = str(tmp_path / 'epoch_1.pth')
    torch.save({'text_prompt.ctx': torch.zeros(4, 64)}, path)
    with pytest.raises(CLIPBuildError) as exc:
        FrozenCLIP(arch=ARCH, pretrained=path, quick_gelu=False)
    _one_line(exc, path, 'mmpl checkpoint', 'tools/test.py')


def test_pickled_object_is_refused_without_running_it(tmp_path):
    path = str(tmp_path / 'model.pt')
    torch.save({'model': torch.nn.Linear(2, 2)}, path)
    with pytest.raises(CLIPBuildError) as exc:
        FrozenCLIP(arch=ARCH, pretrained=path, quick_gelu=False)
    _one_line(exc, path, 'pickled', 'state_dict')


def test_incomplete_state_dict_names_missing_tensors(source, tmp_path):
    path = str(tmp_path / 'part.pt')
    sd = source.state_dict()
    sd.pop('text_projection')
    torch.save(sd, path)
    with pytest.raises(CLIPBuildError) as exc:
        FrozenCLIP(arch=ARCH, pretrained=path, quick_gelu=False)
    _one_line(exc, path, 'text_projection')


def test_recipe_weights_keep_their_activation(source, tmp_path):
    """Weights written by mmpl's recipe (``pretrained='mmpl:<file>'``, as the
    lab's tiny CLIPs are) carry OpenAI's tensor names in fp16 but were
    trained with the architecture's activation (not taken for OpenAI's)."""
    path = str(tmp_path / 'recipe.pt')
    torch.save({k: v.half() for k, v in source.state_dict().items()}, path)
    clip = FrozenCLIP(arch=ARCH, pretrained='mmpl:' + path)
    assert _activation(clip) is torch.nn.GELU


def test_arch_may_be_a_model_config_file(tmp_path):
    """model.clip.arch takes the path of an open_clip model config (the
    flat format and Hugging Face's open_clip_config.json, which nests it
    under model_cfg): the model built equals the named architecture's;
    a missing, non-JSON or non-model file is one line."""

    cfg = json.load(open(TINY_ARCH))
    flat = tmp_path / 'my-tiny-clip.json'
    flat.write_text(json.dumps(cfg))
    nested = tmp_path / 'open_clip_config.json'
    nested.write_text(json.dumps(dict(model_cfg=cfg, preprocess_cfg={})))
    named = FrozenCLIP('mmpl-tiny-vit')
    shapes = {k: v.shape for k, v in named.model.state_dict().items()}
    calls = []
    add = open_clip.add_model_config
    open_clip.add_model_config = lambda path: (calls.append(path), add(path))
    try:
        for path in (flat, nested, flat):
            FrozenCLIP(str(path))
    finally:
        open_clip.add_model_config = add
    assert len(calls) == 2  # the same file again: registered already
    for path in (flat, nested):
        clip = FrozenCLIP(str(path))
        assert {k: v.shape for k, v in clip.model.state_dict().items()} \
            == shapes
        assert clip.arch == path.stem
        assert clip.tokenizer(['a photo']).shape[-1] == \
            named.tokenizer(['a photo']).shape[-1]
    (tmp_path / 'not.json').write_text('{"embed_dim": 8')
    (tmp_path / 'other.json').write_text('{"embed_dim": 8}')
    for path, words in (('nowhere.json', 'not found'),
                        (tmp_path / 'not.json', 'is not JSON'),
                        (tmp_path / 'other.json', 'is not an open_clip model '
                         'config')):
        with pytest.raises(CLIPBuildError, match=words) as info:
            FrozenCLIP(str(path))
        assert '\n' not in str(info.value)
