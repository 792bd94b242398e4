"""docs/add_a_method.md works as written: its method file, built as a
custom import, trains on the tiny offline CLIP and starts as CoOp; its
config family and catalogue entry, written into a scratch repository by the
page's script, pass the catalogue's rules; its config outside mmpl trains
end to end (tools/misc/smoke.py's path)."""
import importlib
import os
import os.path as osp
import re
import sys

import pytest
import torch
from mmengine.config import Config
from test_catalogue import DATASET_TITLES, LEAF, PROTOCOL_LEAVES

from helpers import (ROOT, assert_close_to_scale, build_classifier, samples,
                     train_losses)

PAGE = open(osp.join(ROOT, 'docs', 'add_a_method.md'), encoding='utf-8').read()
#: ``File `path`:`` + a fenced block: the files the page writes
FILES = dict(re.findall(r'^File `([^`]+)`:\n\n```\w*\n(.*?)^```', PAGE,
                        flags=re.S | re.M))
SCRIPT = re.search(r'^Script, run from the repository root:\n\n```python\n'
                   r'(.*?)^```', PAGE, flags=re.S | re.M).group(1)
METHOD_FILE = 'mmpl/prompts/class_bias_coop.py'
FAMILY = 'configs/classbias'
CLASSES = ['dog', 'cat', 'red fox', 'Sea_or_Lake']
COOP = dict(type='CoOp', n_ctx=4, ctx_init='a photo of a')


def as_custom_import(source: str) -> str:
    """The page's rule for a method outside mmpl: absolute imports."""
    source = re.sub(r'^from \.\.(\w)', r'from mmpl.\1', source, flags=re.M)
    return re.sub(r'^from \.(\w)', r'from mmpl.prompts.\1', source,
                  flags=re.M)


def unscoped(node):
    """A config node without the ``_scope_`` keys that ``mmpl::`` bases
    add."""
    if isinstance(node, dict):
        return {k: unscoped(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [unscoped(v) for v in node]
    return node


@pytest.fixture(scope='module')
def plugin(tmp_path_factory):
    """The page's method file, imported from a scratch folder (which stays
    on ``sys.path`` for the module's tests): it registers ClassBiasCoOp."""
    folder = str(tmp_path_factory.mktemp('plugin'))
    with open(osp.join(folder, 'class_bias_coop.py'), 'w') as f:
        f.write(as_custom_import(FILES[METHOD_FILE]))
    sys.path.insert(0, folder)
    try:
        module = importlib.import_module('class_bias_coop')
        assert osp.dirname(module.__file__) == folder
        yield folder
    finally:
        sys.path.remove(folder)


def test_the_page_has_its_files_and_is_linked_from_the_readme():
    assert sorted(FILES) == sorted([
        METHOD_FILE, f'{FAMILY}/_base_/classbias_vitb16.py',
        f'{FAMILY}/metafile.yml', f'{FAMILY}/README.md',
        'my_classbias_b2n_eurosat.py'])
    readme = open(osp.join(ROOT, 'README.md'), encoding='utf-8').read()
    assert '`docs/add_a_method.md`' in readme
    # the file is a method file of mmpl as the others: relative imports
    # of the shared modules only (tests/test_layering.py's rule)
    imports = re.findall(r'^from \.(\w+) import', FILES[METHOD_FILE], re.M)
    assert set(imports) <= {'base', 'context', 'layers', 'deep'}


def test_the_method_starts_as_coop_and_trains(plugin):
    from mmpl.structures import Needs
    images = torch.randn(3, 3, 224, 224,
                         generator=torch.Generator().manual_seed(3))
    model = build_classifier(dict(type='ClassBiasCoOp'), CLASSES)
    coop = build_classifier(COOP, CLASSES)
    assert model.needs == Needs(anchors=True)
    assert (model.text_prompt.n_ctx, model.text_prompt.context_phrase) == (
        4, 'a photo of a')
    model.eval(), coop.eval()
    with torch.no_grad():
        at_init, reference = model(images), coop(images)
    assert_close_to_scale(at_init, reference)  # the bias starts at zero
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = train_losses(model, images, samples([0, 1, 3]), steps=2, lr=0.1)
    assert losses[1] < losses[0]
    after = model.state_dict()
    assert sorted(after) == ['text_prompt.bias_net.0.bias',
                             'text_prompt.bias_net.0.weight',
                             'text_prompt.bias_net.2.bias',
                             'text_prompt.bias_net.2.weight',
                             'text_prompt.ctx']
    for key in ('text_prompt.ctx', 'text_prompt.bias_net.2.weight'):
        assert not torch.equal(before[key], after[key]), key
    model.eval()
    with torch.no_grad():
        bias = model.text_prompt.bias_net(model.class_anchors())
        trained = model(images)
    assert bias.abs().amax(1).min() > 0  # a bias for every class
    assert not torch.allclose(trained, reference)
    for p in model.clip.model.parameters():
        assert not p.requires_grad


@pytest.fixture(scope='module')
def scratch(tmp_path_factory):
    """A scratch repository with the page's config family and catalogue
    entry: its files, then its script run in the root."""
    root = str(tmp_path_factory.mktemp('repo'))
    os.makedirs(osp.join(root, FAMILY, '_base_'))
    os.symlink(osp.join(ROOT, 'configs', '_base_'),
               osp.join(root, 'configs', '_base_'))
    for path, text in FILES.items():
        if path.startswith(FAMILY):
            with open(osp.join(root, path), 'w') as f:
                f.write(text)
    index = re.search(r'```yaml\n(Import:\n.*?)```', PAGE, flags=re.S)
    with open(osp.join(root, 'model-index.yml'), 'w') as f:
        f.write(index.group(1))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        exec(compile(SCRIPT, 'add_a_method.md', 'exec'), {})
    finally:
        os.chdir(cwd)
    return root


def test_the_family_has_every_protocol_leaf(scratch):
    names = sorted(n for n in os.listdir(osp.join(scratch, FAMILY))
                   if n.endswith('.py'))
    assert names == sorted(f'classbias_vitb16_{leaf}.py'
                           for leaf in PROTOCOL_LEAVES)
    for leaf, protocol, shots in (('b2n_dtd', 'b2n', 16),
                                  ('fewshot1_eurosat', 'fewshot', 1),
                                  ('xd_imagenet', 'xd', 16)):
        cfg = Config.fromfile(osp.join(scratch, FAMILY,
                                       f'classbias_vitb16_{leaf}.py'))
        assert cfg.model.text_prompt.type == 'ClassBiasCoOp'
        assert (cfg.protocol, cfg.train_cfg.max_epochs) == (protocol, 10)
        if protocol == 'fewshot':
            assert cfg.train_dataloader.dataset.num_shots == shots


def test_the_catalogue_entry_follows_the_catalogues_rules(scratch):
    """The rules of tests/test_catalogue.py, on the scratch repository."""
    from mmpl.apis.catalogue import read_metafiles
    metafiles = read_metafiles(scratch)
    assert list(metafiles) == [f'{FAMILY}/metafile.yml']
    meta = metafiles[f'{FAMILY}/metafile.yml']
    [collection] = meta['Collections']
    assert collection['Name'] == 'ClassBiasCoOp'
    assert re.search(r' 20\d\d$', collection['Paper']['Venue'])
    assert 'CLIP ViT-B/16' in collection['Metadata']['Architecture']
    assert osp.isfile(osp.join(scratch, collection['README']))
    configs = sorted(m['Config'] for m in meta['Models'])
    assert configs == sorted(f'{FAMILY}/classbias_vitb16_{leaf}.py'
                             for leaf in PROTOCOL_LEAVES)
    for m in meta['Models']:
        assert osp.isfile(osp.join(scratch, m['Config']))
        leaf = LEAF.match(osp.basename(m['Config']))
        assert m['Name'] == osp.basename(m['Config'])[:-3]
        assert m['In Collection'] == 'ClassBiasCoOp'
        assert m['Metadata'] == {
            'Protocol': leaf['protocol'],
            'Training Data': DATASET_TITLES[leaf['dataset']],
            'Shots': int(leaf['shots'] or 16)}
    row = re.search(r'^\| `classbias` \|.*$', PAGE, flags=re.M).group(0)
    assert collection['Paper']['Venue'] in row


@pytest.mark.heavy
def test_the_config_outside_mmpl_trains_end_to_end(plugin, scratch,
                                                   tmp_path):
    """The custom-import config (tiny CLIP, generated EuroSAT, one short
    epoch, base and new evaluated) equals the family's b2n leaf."""
    from mmpl.testing import smoke
    config = str(tmp_path / 'my_classbias_b2n_eurosat.py')
    with open(config, 'w') as f:
        f.write(FILES['my_classbias_b2n_eurosat.py'])
    mine = Config.fromfile(config)
    leaf = Config.fromfile(osp.join(scratch, FAMILY,
                                    'classbias_vitb16_b2n_eurosat.py'))
    for key in ('model', 'optim_wrapper', 'param_scheduler', 'train_cfg',
                'train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert unscoped(mine[key]) == unscoped(leaf[key]), key
    metrics = smoke(config, str(tmp_path / 'work'))
    assert set(metrics) >= {'base/accuracy/top1', 'new/accuracy/top1',
                            'harmonic_mean'}
