"""Check, download and complete the CoOp-benchmark datasets under a data root.

    python tools/dataset_converters/prepare_data.py --data-root data --check
    python tools/dataset_converters/prepare_data.py --data-root data \\
        --datasets imagenet imagenetv2 --make-classnames
    python tools/dataset_converters/prepare_data.py --data-root data \\
        --datasets dtd --download --make-split

For each dataset (``<data root>/<dir>``, PROTOCOL.md layout):

- ``--check`` (the default): builds the reader for every split and reports
  exactly what is missing (folder, split/list/classnames file, images found
  vs listed); ``--verify-images`` also decodes every image.
- ``--download``: fetches the public archives of the original datasets (with
  a progress bar) and extracts the needed part into place; offline, says so
  and prints the URL and where to put the archive. Split files and
  login-only data (ImageNet, Stanford Cars, UCF101 frames, Sketch) are
  pointed to, not fetched.
- ``--make-classnames``: writes ``classnames.txt`` for ImageNet and its
  variants offline (names shipped in open_clip).
- ``--make-split``: when the official split file is absent, writes a seeded
  split with CoOp's proportions (50/20/30 per class), marked as generated:
  results are NOT comparable with published numbers.

Nothing is ever deleted or overwritten: existing files are kept, archives
are only extracted into paths that do not exist yet.
"""
import json
import os
import os.path as osp
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from typing import List, Optional

from mmpretrain.utils import register_all_modules

from mmpl.datasets import READERS, SPLITS
from mmpl.datasets.folders import (COOP_SPLIT_RATIOS, GENERATED_KEY,
                                   generate_split)
from mmpl.datasets.imagenet import (CLASSNAMES_FILE, CoOpImageFolderDataset,
                                    imagenet_wnids, write_classnames)
from mmpl.datasets.split_file import CoOpSplitDataset
from mmpl.utils.cli import ArgumentParser
from mmpl.utils.errors import MMPLError

LOUD = '!' * 78


def say(msg: str = '') -> None:
    print(msg, flush=True)


# ----------------------------------------------------------------- check
def check_dataset(slug: str, root: str, verify_images: bool = False) -> bool:
    """Report the state of one dataset; ``True`` when every split loads."""
    reader = READERS[slug]
    card = reader.CARD
    folder = osp.join(root, card.dir)
    say(f'[{slug}] {folder}')
    if not osp.isdir(folder):
        say(f'  MISSING folder {folder} ({card.source})')
        return False
    ok = True
    seen = set()
    for split in reader.AVAILABLE_SPLITS:
        try:
            ds = reader(data_root=folder, split=split, serialize_data=False)
        except MMPLError as e:
            ok = False
            if str(e) not in seen:
                seen.add(str(e))
                say(f'  MISSING/BAD {split}: {e}')
                if card.can_generate_split and \
                        'split file' in str(e) and 'not found' in str(e):
                    say('  (or --make-split: a seeded split, NOT '
                        'comparable with published numbers)')
            continue
        expected = card.num_images.get(split)
        count = f'{len(ds)} images'
        if expected is not None and len(ds) != expected:
            count += f' (the full dataset has {expected})'
        say(f'  ok {split}: {count}, {len(ds.metainfo["classes"])} classes')
        if verify_images:
            ok &= _verify_images(ds)
    if ok and card.num_classes:
        n = len(reader(data_root=folder,
                       split=reader.AVAILABLE_SPLITS[0],
                       lazy_init=True).metainfo['classes'])
        if n != card.num_classes:
            say(f'  NOTE {n} classes, the full dataset has '
                f'{card.num_classes}')
    return ok


def _verify_images(ds) -> bool:
    from PIL import Image
    bad = []
    for i in range(len(ds)):
        path = ds.get_data_info(i)['img_path']
        try:
            with Image.open(path) as img:
                img.convert('RGB')
        except Exception as e:  # any decoder error
            bad.append(f'{path} ({type(e).__name__})')
    for b in bad[:10]:
        say(f'  UNDECODABLE {b}')
    if bad:
        say(f'  {len(bad)} of {len(ds)} images do not decode')
    return not bad


# -------------------------------------------------------------- download
def _progress(total: Optional[int], desc: str):
    try:
        from tqdm import tqdm
        return tqdm(total=total, unit='B', unit_scale=True, desc=desc)
    except ImportError:  # pragma: no cover
        return None


def fetch(url: str, dest: str, timeout: float = 30) -> None:
    """Download ``url`` to ``dest`` (via ``dest.part``) with a progress
    bar; raises ``urllib.error.URLError``/``OSError`` when unreachable."""
    part = dest + '.part'
    with urllib.request.urlopen(url, timeout=timeout) as r:
        length = r.headers.get('Content-Length')
        total = int(length) if length else None
        bar = _progress(total, osp.basename(dest))
        with open(part, 'wb') as f:
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                f.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        if bar is not None:
            bar.close()
    os.replace(part, dest)


def _members(archive: str):
    """``(name, is_dir, open())`` of every member of a tar or zip file."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                yield info.filename, info.is_dir(), lambda i=info: z.open(i)
    else:
        with tarfile.open(archive) as t:
            for m in t:
                if m.isdir() or m.isfile():
                    yield m.name, m.isdir(), lambda m=m: t.extractfile(m)


def extract(archive: str, folder: str, members) -> int:
    """Extract the members under each ``(prefix, dest)`` of ``members`` into
    ``folder/dest...``; never overwrites. Returns the number of files."""
    n = 0
    for name, is_dir, open_member in _members(archive):
        name = name.lstrip('./')
        for prefix, dest in members:
            if not name.startswith(prefix) or is_dir:
                continue
            rel = dest + name[len(prefix):]
            target = osp.normpath(osp.join(folder, rel))
            if not target.startswith(osp.abspath(folder) + os.sep):
                continue  # a path escaping the folder
            if osp.exists(target):
                continue
            os.makedirs(osp.dirname(target), exist_ok=True)
            part = target + '.part'  # a broken member leaves no half file
            try:
                with open_member() as src, open(part, 'wb') as dst:
                    shutil.copyfileobj(src, dst)
                os.replace(part, target)
            finally:
                if osp.exists(part):
                    os.remove(part)
            n += 1
    return n


def download_dataset(slug: str, root: str) -> bool:
    reader = READERS[slug]
    card = reader.CARD
    folder = osp.join(root, card.dir)
    say(f'[{slug}] download into {folder}')
    if not card.downloads:
        say(f'  not downloadable by this tool; get it from {card.source}')
        return False
    ok = True
    image_dir = getattr(reader, 'IMAGE_DIR', None) or ''
    for dl in card.downloads:
        targets = [osp.join(folder, dest or image_dir)
                   for _, dest in dl.members]
        if all(osp.isdir(t) and os.listdir(t) for t in targets):
            say(f'  present: {", ".join(targets)}; skipped {dl.url}')
            continue
        os.makedirs(folder, exist_ok=True)
        archive = osp.join(folder, osp.basename(dl.url))
        if not osp.exists(archive):
            try:
                fetch(dl.url, archive)
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, 'reason', e)
                say(f'  OFFLINE or unreachable ({reason}): download {dl.url} '
                    f'yourself, put it at {archive} and run --download again '
                    '(it extracts an archive that is already there)')
                ok = False
                continue
        try:
            n = extract(archive, folder, dl.members)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError,
                zlib.error) as e:
            say(f'  {archive} is not a readable archive ({e}); the files '
                'extracted before the error are kept. Delete the archive '
                'and run --download again (or download it yourself)')
            ok = False
            continue
        say(f'  extracted {n} files from {archive} (kept the archive; '
            'delete it yourself when done)')
    split_file = getattr(reader, 'SPLIT_FILE', None)  # split-file readers
    if split_file and not osp.exists(osp.join(folder, split_file)):
        say(f'  the split file {osp.join(folder, split_file)} is published '
            f'at {card.split_source}')
    return ok


# ----------------------------------------------------------- classnames
def make_classnames(slug: str, root: str) -> bool:
    reader = READERS[slug]
    if not issubclass(reader, CoOpImageFolderDataset):
        return True
    path = osp.join(root, reader.CARD.dir, CLASSNAMES_FILE)
    if write_classnames(path, imagenet_wnids()):
        say(f'[{slug}] wrote {path} (1000 classes: sorted ILSVRC-2012 '
            'wnids + open_clip IMAGENET_CLASSNAMES)')
    else:
        say(f'[{slug}] {path} exists; left unchanged')
    return True


# ---------------------------------------------------------------- split
def make_split(slug: str, root: str, seed: int) -> bool:
    reader = READERS[slug]
    if not issubclass(reader, CoOpSplitDataset):
        return True
    card = reader.CARD
    folder = osp.join(root, card.dir)
    path = osp.join(folder, reader.SPLIT_FILE)
    if osp.exists(path):
        say(f'[{slug}] {path} exists; left unchanged')
        return True
    if not card.can_generate_split:
        say(f'[{slug}] cannot generate a split for {slug} (its official '
            'split is built from annotation files, not class folders); get '
            f'{reader.SPLIT_FILE} from {card.split_source}')
        return False
    image_root = osp.join(folder, reader.IMAGE_DIR)
    if not osp.isdir(image_root):
        say(f'[{slug}] MISSING image root {image_root}; nothing to split')
        return False
    splits = generate_split(image_root, seed=seed, ratios=COOP_SPLIT_RATIOS,
                            ignored=reader.DROP_CLASSES,
                            classname_map=reader.CLASSNAME_MAP)
    note = (f'mmpl prepare_data.py --make-split --seed {seed} (CoOp '
            'read_and_split_data proportions); NOT the official split')
    with open(path, 'x', encoding='utf-8') as f:
        json.dump({GENERATED_KEY: note, **splits}, f)
    say(LOUD)
    say(f'WARNING [{slug}]: wrote a GENERATED split {path} (seed {seed}).')
    say('Results with it are NOT comparable with published numbers. For')
    say(f'comparable results use the official file: {card.split_source}')
    say(f'(delete {path} yourself and put the official one there).')
    say(LOUD)
    return True


# ------------------------------------------------------------------ main
def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data-root', required=True,
                   help='folder that holds the dataset folders')
    p.add_argument('--datasets', nargs='+', choices=sorted(READERS),
                   metavar='SLUG', help='default: all of '
                   + ', '.join(sorted(READERS)))
    p.add_argument('--check', action='store_true')
    p.add_argument('--verify-images', action='store_true',
                   help='with --check: decode every image')
    p.add_argument('--download', action='store_true')
    p.add_argument('--make-classnames', action='store_true')
    p.add_argument('--make-split', action='store_true')
    p.add_argument('--seed', type=int, default=1,
                   help='seed of --make-split (default 1)')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)
    root = osp.abspath(osp.expanduser(args.data_root))
    slugs: List[str] = args.datasets or sorted(READERS)
    act = args.download or args.make_classnames or args.make_split
    ok = True
    for slug in slugs:
        if args.download:
            ok &= download_dataset(slug, root)
        if args.make_classnames:
            ok &= make_classnames(slug, root)
        if args.make_split:
            ok &= make_split(slug, root, args.seed)
    if args.check or not act:
        say(f'checking {len(slugs)} datasets under {root} (splits: '
            f'{"/".join(SPLITS)})')
        results = {s: check_dataset(s, root, args.verify_images)
                   for s in slugs}
        say('ready: ' + (', '.join(s for s, r in results.items() if r)
                         or 'none'))
        missing = [s for s, r in results.items() if not r]
        if missing:
            say('not ready: ' + ', '.join(missing))
        ok &= not missing
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
