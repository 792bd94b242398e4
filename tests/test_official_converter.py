"""tools/model_converters/official_to_mmpl.py: checkpoints of the authors'
code (Dassl) -> mmpl checkpoints, proven on the golden fixtures: the sample
official checkpoints convert to exactly the fixture parameters, and the
converted checkpoint, loaded as tools/test.py loads one, gives the official
logits."""
import os
import os.path as osp

import pytest
import torch
from mmengine.runner.checkpoint import load_checkpoint
from mmpretrain.registry import MODELS

from mmpl.models.official_checkpoints import (OfficialCheckpointError,
                                              convert_official_checkpoint,
                                              load_official_checkpoint,
                                              official_to_mmpl)
from helpers import load_tool
from test_golden import (CASES, ORACLE, TOL, inputs, load_case,  # noqa: F401
                         oracle_model_cfg)

CHECKPOINTS = {  # sample official checkpoint folder -> golden case
    'coop': 'coop16', 'cocoop': 'cocoop', 'kgcoop': 'kgcoop',
    'maple': 'maple_nohalf', 'ivlp': 'ivlp_nohalf',
    'promptsrc': 'promptsrc_nohalf'
}
#: the layout the converter reads in each sample (PromptSRC saves IVLP's
#: layout plus its frozen image-encoder copy)
LAYOUTS = {'promptsrc': 'ivlp'}


def _folder(method):
    return osp.join(ORACLE, 'checkpoints', method)


@pytest.mark.parametrize('method', list(CHECKPOINTS))
def test_sample_checkpoints_convert_to_the_fixture_parameters(method):
    ckpt = load_official_checkpoint(_folder(method))  # folder -> the file
    layout, mapped, dropped = official_to_mmpl(ckpt['state_dict'])
    assert layout == LAYOUTS.get(method, method)
    _, expected, _ = official_to_mmpl(load_case(CHECKPOINTS[method])['params'])
    assert mapped.keys() == expected.keys()
    for key in expected:
        assert torch.equal(mapped[key], expected[key]), key
    assert any('token_prefix' in k for k in dropped)


@pytest.mark.parametrize('method', list(CHECKPOINTS))
def test_converted_checkpoint_gives_the_official_logits(method, inputs,  # noqa: F811
                                                        tmp_path):
    case_name = CHECKPOINTS[method]
    config, options = CASES[case_name]
    model_cfg = oracle_model_cfg(config, **options)
    converted = convert_official_checkpoint(_folder(method), model_cfg)
    path = str(tmp_path / 'converted.pth')
    torch.save(converted, path)
    # what tools/test.py does: build from the config, load_from the file
    meta = torch.load(path, weights_only=True)['meta']['mmpl']
    assert meta['pretrained'] == model_cfg['clip']['pretrained']
    assert meta['model']['clip'] == model_cfg['clip']
    model = MODELS.build(model_cfg)
    load_checkpoint(model, path, map_location='cpu')
    model.set_classes(inputs['classnames'], inputs['template'])
    model.eval()
    with torch.no_grad():
        logits = model.forward_features(inputs['images']).logits
    case = load_case(case_name)
    assert (logits - case['logits']).abs().max() < TOL['logits']


def test_real_dassl_file_with_a_pickled_scheduler_runs_no_code(tmp_path):
    """Dassl pickles CosineAnnealingLR (with the optimizer) into the
    scheduler entry; the reader rebuilds the tensors and nothing else."""
    official = torch.load(osp.join(_folder('coop'), 'prompt_learner',
                                   'model.pth.tar-50'), weights_only=True)
    ctx = torch.nn.Parameter(official['state_dict']['ctx'].clone())
    optim = torch.optim.SGD([ctx], lr=2e-3)
    official['scheduler']['successor'] = \
        torch.optim.lr_scheduler.CosineAnnealingLR(optim, 50)
    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {marker}', ))

    official['val_result'] = Payload()
    folder = tmp_path / 'out' / 'prompt_learner'
    folder.mkdir(parents=True)
    torch.save(official, str(folder / 'model.pth.tar-50'))
    (folder / 'checkpoint').write_text('model.pth.tar-50\n')
    with pytest.raises(Exception, match='Unsupported global'):
        torch.load(str(folder / 'model.pth.tar-50'), weights_only=True)
    ckpt = load_official_checkpoint(str(tmp_path / 'out'))
    assert not marker.exists()
    assert ckpt['epoch'] == 50
    assert torch.equal(ckpt['state_dict']['ctx'],
                       official['state_dict']['ctx'])


@pytest.mark.parametrize('where', ['first pickle', 'scheduler'])
def test_legacy_format_file_runs_no_code(tmp_path, where):
    """The legacy (non-zip) format is several pickles in a row: a payload
    in the one torch reads as the magic number, or in the scheduler entry
    of the main one, runs nothing (a global that weights_only refuses as
    'Unsupported global', so the inert reader is used)."""
    import io
    import pickle
    import subprocess
    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return (subprocess.call, (['touch', str(marker)], ))

    ckpt = {'state_dict': {'ctx': torch.arange(8.).view(2, 4)}, 'epoch': 3}
    if where == 'scheduler':
        ckpt['scheduler'] = {'successor': Payload()}
    buf = io.BytesIO()
    torch.save(ckpt, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    if where == 'first pickle':  # the payload replaces the magic number
        magic = pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)
        assert data.startswith(magic)
        data = pickle.dumps(Payload(), protocol=2) + data[len(magic):]
    path = tmp_path / 'model.pth.tar-3'
    path.write_bytes(data)
    with pytest.raises(Exception, match='Unsupported global'):
        torch.load(str(path), weights_only=True)
    if where == 'first pickle':
        with pytest.raises(OfficialCheckpointError, match='corrupt'):
            load_official_checkpoint(str(path))
    else:
        out = load_official_checkpoint(str(path))
        assert torch.equal(out['state_dict']['ctx'], ckpt['state_dict']['ctx'])
    assert not marker.exists()


def test_ivlp_promptsrc_layout(tiny_clip):
    """IVLP / PromptSRC (the authors' layout: ``prompt_learner.ctx``, the
    vision tower's ``VPT``, ``VPT_shallow`` per block) -> mmpl's IVLP."""
    cfg = dict(type='PromptCLIPClassifier',
               clip=dict(arch='mmpl-tiny-vit'),
               text_prompt=dict(type='IVLP', n_ctx=2, depth=2))
    model = MODELS.build(cfg)
    tp = model.text_prompt
    official = {
        'prompt_learner.ctx': torch.randn_like(tp.ctx),
        'prompt_learner.token_prefix': torch.zeros(3, 1, 64),
        'image_encoder.VPT': torch.randn_like(tp.visual[0]),
        'image_encoder.transformer.resblocks.1.VPT_shallow':
        torch.randn_like(tp.visual[1]),
        'text_encoder.transformer.resblocks.1.VPT_shallow':
        torch.randn_like(tp.deep_text[0]),
        'image_encoder.conv1.weight': torch.zeros(1),  # frozen CLIP: dropped
        'logit_scale': torch.zeros(()),
    }
    layout, mapped, dropped = official_to_mmpl(official)
    assert layout == 'ivlp'
    assert torch.equal(mapped['text_prompt.visual.0'],
                       official['image_encoder.VPT'])
    assert torch.equal(mapped['text_prompt.deep_text.0'], official[
        'text_encoder.transformer.resblocks.1.VPT_shallow'])
    assert torch.equal(mapped['text_prompt.visual.1'], official[
        'image_encoder.transformer.resblocks.1.VPT_shallow'])
    assert len(dropped) == 3
    model.load_state_dict(mapped, strict=False)
    assert torch.equal(tp.ctx, official['prompt_learner.ctx'])


@pytest.fixture(scope='module')
def tool():
    oracle_model_cfg(CASES['coop16'][0])  # registers the fixtures' CLIP
    return load_tool('tools/model_converters/official_to_mmpl.py')


ORACLE_CLIP = ['--cfg-options', 'model.clip.arch=oracle-clip-small']


def test_tool_writes_a_checkpoint_and_never_overwrites(tool, tmp_path,
                                                       capsys):
    out = tmp_path / 'coop.pth'
    rc = tool.main([_folder('coop'), 'configs/coop/coop_vitb16_b2n_eurosat.py',
                    str(out)] + ORACLE_CLIP)
    assert rc == 0 and out.is_file()
    ckpt = torch.load(str(out), weights_only=True)
    assert set(ckpt['state_dict']) == {'text_prompt.ctx'}
    assert ckpt['meta']['mmpl']['arch'] == 'oracle-clip-small'
    assert ckpt['meta']['converted_from']['layout'] == 'coop'
    capsys.readouterr()
    rc = tool.main([_folder('coop'), 'configs/coop/coop_vitb16_b2n_eurosat.py',
                    str(out)] + ORACLE_CLIP)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith('mmpl: error:') and 'exists' in err


def test_tool_converts_promptsrc_for_a_clip_given_by_its_config_file(
        tool, tmp_path, inputs):  # noqa: F811
    """The official PromptSRC sample (whole model with the frozen image-tower
    copy) for the fixture's non-standard CLIP, given as its open_clip model
    config file: the tool writes the checkpoint, and the model tools/test.py
    builds from the same config and options gives the official logits."""
    from mmengine.config import Config
    config = 'configs/promptsrc/promptsrc_vitb16_b2n_eurosat.py'
    options = [f'model.clip.arch={ORACLE}/oracle-clip-small.json',
               f'model.clip.pretrained={ORACLE}/clip_small_openai.pt',
               'model.text_prompt.depth=3']
    out = tmp_path / 'promptsrc.pth'
    assert tool.main([_folder('promptsrc'), config, str(out),
                      '--cfg-options'] + options) == 0
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(o.split('=', 1) for o in options[:2]))
    cfg.model.text_prompt.depth = 3
    model = MODELS.build(cfg.model)
    load_checkpoint(model, str(out), map_location='cpu')
    model.set_classes(inputs['classnames'], inputs['template'])
    model.eval()
    with torch.no_grad():
        logits = model.forward_features(inputs['images']).logits
    case = load_case('promptsrc_nohalf')
    assert (logits - case['logits']).abs().max() < TOL['logits']


@pytest.mark.parametrize('source,config,words', [
    ('maple', 'configs/coop/coop_vitb16_b2n_eurosat.py',
     'does not have'),  # MaPLe weights into a CoOp model: unknown keys
    ('coop', 'configs/maple/maple_vitb16_b2n_eurosat.py',
     'lacks'),  # CoOp weights into MaPLe: missing keys
    ('coop', 'configs/cocoop/cocoop_vitb16_b2n_eurosat.py',
     'meta_net'),
])
def test_tool_errors_are_one_line(tool, tmp_path, capsys, source, config,
                                  words):
    options = ['model.text_prompt.depth=3'] if 'maple' in config else []
    rc = tool.main([_folder(source), config, str(tmp_path / 'x.pth')] +
                   ORACLE_CLIP + options)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith('mmpl: error:') and '\n' not in err
    assert words in err
    assert not (tmp_path / 'x.pth').exists()


def test_shape_mismatch_and_unknown_layout(tmp_path):
    model_cfg = oracle_model_cfg('configs/coop/coop_vitb16_b2n_eurosat.py',
                                 n_ctx=4)
    with pytest.raises(OfficialCheckpointError, match=r'text_prompt.ctx has '
                       r'shape \(16, 128\).*\(4, 128\)'):
        convert_official_checkpoint(_folder('coop'), model_cfg)
    with pytest.raises(OfficialCheckpointError, match='unknown official'):
        official_to_mmpl({'weird.tensor': torch.zeros(1)})
    garbage = tmp_path / 'model.pth.tar-1'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(OfficialCheckpointError, match='corrupt or truncated'):
        load_official_checkpoint(str(garbage))
