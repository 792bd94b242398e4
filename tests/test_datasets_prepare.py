"""tools/dataset_converters/prepare_data.py on miniatures, offline: the
check report, classnames.txt, generated splits, the offline download
message and extraction from a local archive (file:// URL). It never
deletes or overwrites user data."""
import dataclasses
import json
import os
import os.path as osp
import tarfile
import urllib.error

import pytest

from mmpl.datasets import READERS, Download
from mmpl.datasets.split_file import CoOpDTD, CoOpEuroSAT
from mmpl.testing import write_miniature
from helpers import load_tool

tool = load_tool('tools/dataset_converters/prepare_data.py')


def _run(capsys, *args):
    rc = tool.main(list(args))
    return rc, capsys.readouterr().out


def test_check_reports_precisely(tmp_path, capsys):
    data = str(tmp_path)
    dtd = write_miniature('CoOpDTD', data)
    write_miniature('CoOpImageNetA', data)
    os.remove(osp.join(dtd, 'images', 'banded', 'banded_1.jpg'))
    os.remove(osp.join(dtd, 'images', 'bubbly', 'bubbly_2.jpg'))
    os.remove(osp.join(data, 'imagenet-adversarial', 'classnames.txt'))
    rc, out = _run(capsys, '--data-root', data, '--datasets', 'dtd',
                   'imagenet_a', 'eurosat', '--check')
    assert rc == 1
    assert f'MISSING folder {osp.join(data, "eurosat")}' in out
    assert 'EuroSAT.zip' in out
    assert '2 of 16 images of the \'train\' split' in out
    assert osp.join(dtd, 'images', 'banded', 'banded_1.jpg') in out
    assert 'ok test: 12 images, 4 classes' in out  # test split is complete
    assert '--make-classnames' in out
    assert 'not ready: dtd, imagenet_a, eurosat' in out


def test_check_missing_split_file_points_to_source(tmp_path, capsys):
    root = write_miniature('CoOpEuroSAT', str(tmp_path))
    os.remove(osp.join(root, CoOpEuroSAT.SPLIT_FILE))
    rc, out = _run(capsys, '--data-root', str(tmp_path), '--datasets',
                   'eurosat')
    assert rc == 1
    assert out.count('split_zhou_EuroSAT.json not found') == 1  # deduped
    assert 'DATASETS.md#eurosat' in out and '--make-split' in out


def test_check_verify_images(tmp_path, capsys):
    root = write_miniature('CoOpDTD', str(tmp_path))
    bad = osp.join(root, 'images', 'blotchy', 'blotchy_3.jpg')
    with open(bad, 'wb') as f:
        f.write(b'garbage')
    rc, out = _run(capsys, '--data-root', str(tmp_path), '--datasets', 'dtd',
                   '--check', '--verify-images')
    assert rc == 1 and f'UNDECODABLE {bad}' in out


def test_make_classnames_offline_never_overwrites(tmp_path, capsys):
    data = str(tmp_path)
    rc, out = _run(capsys, '--data-root', data, '--datasets', 'imagenet',
                   'imagenet_r', 'dtd', '--make-classnames')
    path = osp.join(data, 'imagenet', 'classnames.txt')
    lines = open(path).read().splitlines()
    assert len(lines) == 1000 and lines[0] == 'n01440764 tench'
    assert osp.isfile(osp.join(data, 'imagenet-rendition', 'classnames.txt'))
    assert not osp.exists(osp.join(data, 'dtd'))
    with open(path, 'w') as f:
        f.write('n01440764 mine\n')
    rc, out = _run(capsys, '--data-root', data, '--datasets', 'imagenet',
                   '--make-classnames')
    assert 'exists; left unchanged' in out
    assert open(path).read() == 'n01440764 mine\n'


def test_make_split_is_seeded_loud_and_never_overwrites(tmp_path, capsys):
    data = str(tmp_path)
    root = write_miniature('CoOpDTD', data)
    path = osp.join(root, CoOpDTD.SPLIT_FILE)
    os.remove(path)
    rc, out = _run(capsys, '--data-root', data, '--datasets', 'dtd',
                   'sun397', '--make-split', '--seed', '3')
    assert 'NOT comparable with published numbers' in out
    assert 'cannot generate a split for sun397' in out
    with open(path) as f:
        split = json.load(f)
    assert 'NOT the official split' in split['generated_by']
    # 9 images per class: 4/2/3, classes in sorted folder order
    assert [len(split[s]) for s in ('train', 'val', 'test')] == [16, 8, 12]
    assert split['train'][0][1:] == [0, 'banded']
    ds = CoOpDTD(data_root=root, split='val')
    assert len(ds) == 8
    before = open(path).read()
    rc, out = _run(capsys, '--data-root', data, '--datasets', 'dtd',
                   '--make-split', '--seed', '4')
    assert 'exists; left unchanged' in out and open(path).read() == before
    # same seed -> same split elsewhere
    other = write_miniature('CoOpDTD', str(tmp_path / 'other'))
    os.remove(osp.join(other, CoOpDTD.SPLIT_FILE))
    _run(capsys, '--data-root', str(tmp_path / 'other'), '--datasets', 'dtd',
         '--make-split', '--seed', '3')
    assert open(osp.join(other, CoOpDTD.SPLIT_FILE)).read() == before


def test_download_offline_message(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError('no network')

    monkeypatch.setattr(tool.urllib.request, 'urlopen', offline)
    rc, out = _run(capsys, '--data-root', str(tmp_path), '--datasets',
                   'eurosat', 'imagenet', '--download')
    assert rc == 1
    archive = osp.join(str(tmp_path), 'eurosat', 'EuroSAT.zip')
    assert 'OFFLINE' in out and 'no network' in out
    assert 'http://madm.dfki.de/files/sentinel/EuroSAT.zip' in out
    assert archive in out and not osp.exists(archive)
    assert 'not downloadable by this tool' in out and 'image-net.org' in out
    assert 'DATASETS.md#eurosat' in out  # where the split file is


def test_download_extracts_without_overwriting(tmp_path, capsys,
                                               monkeypatch):
    """A file:// URL stands in for the server: the archive is fetched,
    only the mapped members are extracted, existing files are kept."""
    src = tmp_path / 'src' / 'dtd' / 'images' / 'banded'
    src.mkdir(parents=True)
    (src / 'banded_1.jpg').write_bytes(b'new')
    (src / 'banded_2.jpg').write_bytes(b'new')
    (tmp_path / 'src' / 'dtd' / 'labels').mkdir()
    (tmp_path / 'src' / 'dtd' / 'labels' / 'x.txt').write_text('x')
    archive = tmp_path / 'dtd-r1.0.1.tar.gz'
    with tarfile.open(archive, 'w:gz') as t:
        t.add(tmp_path / 'src' / 'dtd', arcname='dtd')
    monkeypatch.setattr(CoOpDTD, 'CARD', dataclasses.replace(
        CoOpDTD.CARD, downloads=(Download(
            archive.as_uri(), (('dtd/images/', 'images/'), )), )))
    data = tmp_path / 'data'
    mine = data / 'dtd' / 'images' / 'banded' / 'banded_1.jpg'
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b'mine')
    # a non-empty images/ counts as present: nothing is fetched
    rc, out = _run(capsys, '--data-root', str(data), '--datasets', 'dtd',
                   '--download')
    assert 'present' in out and not (data / 'dtd' /
                                     'dtd-r1.0.1.tar.gz').exists()
    os.remove(mine)
    (data / 'dtd' / 'images' / 'banded').rmdir()
    rc, out = _run(capsys, '--data-root', str(data), '--datasets', 'dtd',
                   '--download')
    assert 'extracted 2 files' in out
    assert (data / 'dtd' / 'dtd-r1.0.1.tar.gz').exists()
    assert (data / 'dtd' / 'images' / 'banded' / 'banded_2.jpg').read_bytes(
    ) == b'new'
    assert not (data / 'dtd' / 'labels').exists()
    assert 'split_zhou_DescribableTextures.json is published' in out
    # an existing file is never overwritten by extraction
    (data / 'dtd' / 'images' / 'banded' / 'banded_1.jpg').write_bytes(b'me')
    assert tool.extract(str(archive), str(data / 'dtd'),
                        (('dtd/images/', 'images/'), )) == 0
    assert (data / 'dtd' / 'images' / 'banded' /
            'banded_1.jpg').read_bytes() == b'me'


@pytest.mark.parametrize('slug', sorted(READERS))
def test_every_dataset_has_a_source(slug):
    reader = READERS[slug]
    assert reader.CARD.dir and 'http' in reader.CARD.source
    for dl in reader.CARD.downloads:
        assert dl.url.startswith('http') and dl.members


@pytest.mark.parametrize('kind', ['garbage', 'truncated'])
def test_download_over_a_broken_archive_says_so(tmp_path, capsys, kind,
                                                monkeypatch):
    """An archive already in the dataset folder that is not readable (not an
    archive, or cut short mid-member): one message saying what to do, exit
    1, no traceback, and no half-written image left behind."""
    folder = tmp_path / 'data' / 'dtd'
    folder.mkdir(parents=True)
    archive = folder / 'dtd-r1.0.1.tar.gz'
    if kind == 'garbage':
        archive.write_bytes(b'not an archive')
    else:
        src = tmp_path / 'src' / 'dtd' / 'images' / 'banded'
        src.mkdir(parents=True)
        (src / 'banded_1.jpg').write_bytes(os.urandom(200_000))
        whole = tmp_path / 'whole.tar'
        with tarfile.open(whole, 'w') as t:
            t.add(tmp_path / 'src' / 'dtd', arcname='dtd')
        archive = folder / 'dtd-r1.0.1.tar'  # plain tar: cut inside the image
        archive.write_bytes(whole.read_bytes()[:100_000])
        monkeypatch.setattr(CoOpDTD, 'CARD', dataclasses.replace(
            CoOpDTD.CARD, downloads=(Download(
                'https://example.org/dtd-r1.0.1.tar',
                (('dtd/images/', 'images/'), )), )))
    rc, out = _run(capsys, '--data-root', str(tmp_path / 'data'),
                   '--datasets', 'dtd', '--download')
    assert rc == 1
    assert 'is not a readable archive' in out and 'Delete the archive' in out
    assert not [p for p in folder.rglob('*') if p.suffix in ('.jpg', '.part')]
