"""The method catalogue (model-index.yml and configs/<family>/metafile.yml,
OpenMMLab's format): every config family and benchmark config has its
entry, every entry names a config that exists, the published numbers are
the README's, the other method lists of the project name only catalogued
configs, and ``mmpl.apis.list_models`` / ``tools/misc/list_models.py``
read it."""
import glob
import os
import os.path as osp
import re
import shlex
from collections import Counter

import pytest
import yaml

from mmpl.apis import list_methods, list_models
from mmpl.apis.catalogue import METRICS, read_metafiles
from helpers import ROOT, load_tool

#: folders of configs/ that are not method families (no metafile)
NOT_FAMILIES = ('_base_', 'examples')
LEAF = re.compile(r'^\w+?_vitb16_(?P<protocol>b2n|fewshot|xd|dg)'
                  r'(?P<shots>\d*)_(?P<dataset>\w+)\.py$')
DATASET_TITLES = {
    'imagenet': 'ImageNet', 'caltech101': 'Caltech101',
    'oxford_pets': 'OxfordPets', 'stanford_cars': 'StanfordCars',
    'flowers102': 'Flowers102', 'food101': 'Food101',
    'fgvc_aircraft': 'FGVCAircraft', 'sun397': 'SUN397', 'dtd': 'DTD',
    'eurosat': 'EuroSAT', 'ucf101': 'UCF101'}
#: the protocol leaves of every method family (PROTOCOL.md)
PROTOCOL_LEAVES = (
    [f'b2n_{d}' for d in DATASET_TITLES]
    + [f'fewshot16_{d}' for d in DATASET_TITLES]
    + [f'fewshot{k}_eurosat' for k in (1, 2, 4, 8)]
    + ['xd_imagenet', 'dg_imagenet'])
README = open(osp.join(ROOT, 'README.md'), encoding='utf-8').read()
METAFILES = read_metafiles(ROOT)
MODELS = [m for meta in METAFILES.values() for m in meta.get('Models', ())]
COLLECTIONS = {c['Name']: c for meta in METAFILES.values()
               for c in meta.get('Collections', ())}


def families():
    """The config family folders of configs/."""
    configs = osp.join(ROOT, 'configs')
    return sorted(d for d in os.listdir(configs)
                  if osp.isdir(osp.join(configs, d)) and d not in NOT_FAMILIES)


def config_files(family: str):
    """The configs of a family folder (its ``_base_`` excluded)."""
    return sorted(osp.relpath(p, ROOT) for p in
                  glob.glob(osp.join(ROOT, 'configs', family, '*.py')))


def test_every_family_has_a_metafile_that_the_index_imports():
    with open(osp.join(ROOT, 'model-index.yml'), encoding='utf-8') as f:
        index = yaml.safe_load(f)
    expected = [f'configs/{f}/metafile.yml' for f in families()]
    assert sorted(index['Import']) == expected
    assert len(expected) >= 8
    for rel in expected:
        assert osp.isfile(osp.join(ROOT, rel)), rel


def test_every_benchmark_config_has_exactly_one_model():
    listed = Counter(m['Config'] for m in MODELS)
    configs = [c for f in families() for c in config_files(f)]
    missing = [c for c in configs if listed[c] == 0]
    twice = [c for c, n in listed.items() if n > 1]
    assert not missing, f'configs without a metafile entry: {missing}'
    assert not twice, f'configs listed more than once: {twice}'
    for rel, meta in METAFILES.items():
        folder = osp.dirname(rel) + '/'
        assert all(m['Config'].startswith(folder) for m in meta['Models'])


def test_every_config_path_exists():
    missing = [m['Config'] for m in MODELS
               if not osp.isfile(osp.join(ROOT, m['Config']))]
    assert missing == []


def test_models_follow_their_config_names():
    """Name = the config's name with the method's words joined by '-'
    (ctp_tft -> ctp-tft; an ablation may name its own method), the
    metadata (protocol, shots, dataset) = the config name's; no Weights."""
    names = Counter(m['Name'] for m in MODELS)
    assert [n for n, k in names.items() if k > 1] == []
    for m in MODELS:
        leaf = LEAF.match(osp.basename(m['Config']))
        assert leaf, m['Config']
        meta = m['Metadata']
        protocol, shots = leaf['protocol'], leaf['shots']
        assert m['Name'].endswith(m['Config'].split('_vitb16')[-1][:-3])
        assert m['Name'].split('_vitb16_')[0].count('_') == 0, m['Name']
        assert (meta['Protocol'], meta['Shots']) == (
            protocol, int(shots) if shots else 16), m['Name']
        assert meta['Training Data'] == DATASET_TITLES[leaf['dataset']]
        assert m['In Collection'] in COLLECTIONS
        assert 'Weights' not in m
        if 'Results' in m:
            assert protocol == 'b2n' and len(m['Results']) == 1
            # in the metadata, so that `mim search` shows it too
            assert 'not measured by mmpl' in meta['Results From']
            assert set(m['Results'][0]['Metrics']) <= set(METRICS)
        else:
            assert 'Results From' not in meta


def test_collections_cite_their_papers():
    for name, c in COLLECTIONS.items():
        paper = c['Paper']
        assert paper['Title'] and re.search(r' 20\d\d$', paper['Venue'])
        assert 'CLIP ViT-B/16' in c['Metadata']['Architecture']
        if 'README' in c:
            assert osp.isfile(osp.join(ROOT, c['README'])), name
        if 'Results' in c:
            assert 'not measured by mmpl' in c['Notes'], name


def _cell(text: str):
    """A README table number: None for '–'; ('~', value) if approximate."""
    text = text.strip()
    if text in ('-', '–'):
        return None
    if text.startswith('~'):
        return '~', float(text[1:])
    return float(re.match(r'[\d.]+', text).group(0))


def _readme_averages():
    """method -> (base, new, HM, family cell) of the README's table of
    published 11-dataset averages."""
    section = README.split('### Published reference numbers')[1]
    table = next(b for b in section.split('\n\n') if b.startswith('|'))
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip('|').split('|')]
        label = re.search(r'\(([^)]*)\)$', cells[0])
        name = label.group(1) if label and label.group(1) in \
            COLLECTIONS else cells[0]
        rows[name] = tuple(_cell(c) for c in cells[1:4]) + (cells[4], )
    return rows


def test_published_averages_are_the_readmes():
    """Each method's 11-dataset average equals the README's table (an
    approximate '~' value is a note, not a metric); the README names the
    method's config family."""
    rows = _readme_averages()
    methods = {m.name: m for m in list_methods()}
    with_numbers = {n for n, m in methods.items() if m.hm is not None}
    assert with_numbers <= set(rows) and len(with_numbers) >= 8
    for name, (base, new, hm, family) in rows.items():
        if name not in methods:
            assert name == 'CLIP zero-shot'
            continue
        m = methods[name]
        for value, got in zip((base, new, hm), (m.base, m.new, m.hm)):
            if isinstance(value, tuple):
                assert got is None and str(value[1]) in m.notes, name
            else:
                assert got == value, (name, got, value)
        folder = re.search(r'`(\w+)', family).group(1)
        assert folder in {r.family for r in list_models()
                          if r.method == name}, (name, family)


def test_published_eurosat_numbers_are_the_readmes():
    paragraph = ' '.join(README.split('EuroSAT, base / new / HM')[1]
                         .split('\n\n')[0].split())
    readme = {name: tuple(float(v) for v in values) for name, *values in
              re.findall(r'(\w+) (\d+\.\d+) / (\d+\.\d+) / (\d+\.\d+)',
                         paragraph)}
    published = {m.method: (m.base, m.new, m.hm) for m in list_models()
                 if m.published_on is not None}
    assert all(m.published_on == 'EuroSAT' and m.protocol == 'b2n'
               for m in list_models() if m.published_on)
    assert published == {k: v for k, v in readme.items() if k != 'CLIP'}
    assert len(published) == 5


def test_list_models_reads_every_entry_and_filters_like_mmpretrain():
    models = list_models()
    assert [m.name for m in models] == [m['Name'] for m in MODELS]
    eurosat = list_models('ctp-tft*eurosat')
    assert [m.name for m in eurosat] == [
        'ctp-tft_vitb16_b2n_eurosat', 'ctp-tft_vitb16_fewshot16_eurosat'] + [
        f'ctp-tft_vitb16_fewshot{k}_eurosat' for k in (1, 2, 4, 8)]
    coop = list_models('coop_vitb16_b2n_eurosat')[0]
    assert (coop.method, coop.venue, coop.family, coop.protocol) == (
        'CoOp', 'IJCV 2022', 'coop', 'b2n')
    assert (coop.base, coop.new, coop.hm) == (92.19, 54.74, 68.69)
    assert coop.config == 'configs/coop/coop_vitb16_b2n_eurosat.py'
    assert osp.samefile(coop.config_file, osp.join(ROOT, coop.config))
    dg = list_models('dgprompt_vitb16_dg')[0]
    assert (dg.hm, dg.published_on, dg.dataset) == (None, None, 'ImageNet')
    assert list_models('nosuch') == []
    assert [m.name for m in list_methods('CoOp')] == ['CoOp']


def test_modelindex_reads_the_catalogue():
    """The model-index package (what ``mim search`` loads the index with)
    finds every model and collection."""
    load = pytest.importorskip('modelindex.load_model_index').load
    index = load(osp.join(ROOT, 'model-index.yml'))
    assert [m.name for m in index.models] == [m['Name'] for m in MODELS]
    assert {c.name for c in index.collections} == set(COLLECTIONS)


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/misc/list_models.py')


def test_tool_prints_one_line_per_model(tool, capsys):
    assert tool.main(['ctp-tft*b2n']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ['name', 'paper', 'config', 'published', 'HM']
    assert len(lines) == 1 + 11 + 1 and 'not measured by mmpl' in lines[-1]
    row = next(r for r in lines if r.startswith('ctp-tft_vitb16_b2n_dtd '))
    assert row.split() == ['ctp-tft_vitb16_b2n_dtd', 'CTP+TFT', '(ICCV',
                           '2023)', 'configs/tomm/ctp_tft_vitb16_b2n_dtd.py',
                           '-']
    assert tool.main(['maple*b2n_eurosat']) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith(
        '82.35 (EuroSAT)')
    assert tool.main(['--family', 'mpl']) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2 + len(
        [m for m in MODELS if m['Config'].startswith('configs/mpl/')])
    assert tool.main(['--methods']) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 2 + len(COLLECTIONS)
    assert re.search(r'\nPromptSRC +ICCV 2023 .* 84\.26 +76\.10 +79\.97\n',
                     out)


@pytest.mark.parametrize('argv, message', [
    (['nosuch'], "no model name matches 'nosuch'"),
    (['--family', 'nope'], "no config family 'nope'; the families: "),
    (['--methods', 'nope'], "no method name matches 'nope'"),
    (['--methods', '--family', 'tomm'], '--family lists configs'),
])
def test_tool_bad_input_is_one_error_line(tool, capsys, argv, message):
    assert tool.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err.startswith(f'mmpl: error: {message}')
    assert captured.err.count('\n') == 1


def test_tool_bad_argument_is_one_error_line(tool, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tool.main(['--bogus'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith('mmpl: error: unrecognized arguments: --bogus')


def test_readme_catalogue_commands_run(tool, capsys):
    commands = [shlex.split(line.split(' #')[0])[2:]
                for line in re.findall(r'^python tools/misc/list_models\.py'
                                       r'.*$', README, flags=re.M)]
    assert commands
    for argv in commands:
        assert tool.main(argv) == 0, argv
    assert 'mim search mmpl' in README


def test_readme_family_table_is_the_catalogues():
    """The README's table of config families lists the catalogue's
    families, each with its methods' venues."""
    table = README.split('| family | configs | paper |')[1].split('\n\n')[0]
    rows = {re.match(r'\| `(\w+)`', line).group(1): line
            for line in table.splitlines()[2:]}
    assert sorted(set(rows) - set(NOT_FAMILIES)) == families()
    for model in list_models():
        assert model.venue in rows[model.family], (model.family,
                                                   model.venue)


def test_protocol_tests_name_catalogued_configs():
    """The protocol tests' family prefixes name only configs the catalogue
    lists (the lab's method lists: projects/lab/tests/test_lab_methods.py).
    """
    from test_protocols import FAMILIES
    for family, prefix in FAMILIES.items():
        listed = {m.config for m in list_models() if m.family == family}
        assert {f'configs/{family}/{prefix}_vitb16_{leaf}.py'
                for leaf in PROTOCOL_LEAVES} <= listed, family


def test_every_family_lists_every_protocol_leaf():
    """Each family's method (the configs named like its first model's)
    has a model for every protocol leaf, the families awaiting the merge
    too."""
    for rel, meta in METAFILES.items():
        prefix = osp.basename(meta['Models'][0]['Config']).split('_vitb16')[0]
        leaves = [osp.basename(m['Config'])[len(prefix) + 8:-3]
                  for m in meta['Models']
                  if osp.basename(m['Config']).startswith(prefix + '_vitb16')]
        assert sorted(leaves) == sorted(PROTOCOL_LEAVES), rel
