"""The package layering (issue 15): the lower layers never import the upper
ones, and the moved structures keep their old public import paths."""
import ast
import os
import os.path as osp

import pytest

import mmpl
from helpers import ROOT

PACKAGE = osp.dirname(mmpl.__file__)
#: layer -> packages of mmpl it must not import
FORBIDDEN = {
    'clip': ('models', 'engine', 'prompts', 'losses', 'datasets'),
    'prompts': ('models', 'engine'),
    'losses': ('models', 'engine', 'prompts'),
}


def _imported_names(path: str, package: str):
    """Dotted names of the modules the file at ``path`` imports, at any
    level of its code (``package``: its dotted package, for relative
    imports)."""
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split('.')[:len(package.split('.')) -
                                           node.level + 1]
                name = '.'.join(parts + ([node.module] if node.module
                                         else []))
            else:
                name = node.module or ''
            names = [name]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        yield from names


def _mmpl_imports(path: str, package: str):
    """Top-level mmpl sub-packages (and ``tools``) imported by the module at
    ``path``."""
    for name in _imported_names(path, package):
        parts = name.split('.')
        if parts[0] == 'mmpl' and len(parts) > 1:
            yield parts[1]
        if parts[0] == 'tools':
            yield 'tools'


def _python_files(folder: str):
    """(path, dotted package) of every module under ``folder``."""
    for root, _, files in os.walk(folder):
        for name in sorted(files):
            if name.endswith('.py'):
                path = osp.join(root, name)
                rel = osp.relpath(path, osp.dirname(PACKAGE))[:-3]
                yield path, '.'.join(rel.split(os.sep)[:-1])


@pytest.mark.parametrize('layer', sorted(FORBIDDEN))
def test_lower_layers_do_not_import_upper_ones(layer):
    bad = []
    for path, package in _python_files(osp.join(PACKAGE, layer)):
        for imported in _mmpl_imports(path, package):
            if imported in FORBIDDEN[layer] + ('tools', ):
                bad.append(f'{osp.relpath(path, ROOT)} imports {imported}')
    assert not bad, bad


def test_utils_import_nothing_of_mmpl_outside_utils():
    bad = []
    for name in sorted(os.listdir(osp.join(PACKAGE, 'utils'))):
        if name.endswith('.py'):
            path = osp.join(PACKAGE, 'utils', name)
            bad += [f'utils/{name} imports {imported}'
                    for imported in _mmpl_imports(path, 'mmpl.utils')
                    if imported != 'utils']
    assert not bad, bad


def test_no_tool_imports_another_tool():
    """Tools are argparse shells over mmpl.apis / mmpl.testing: none
    imports, runs or loads another tool's file."""
    bad = []
    for root, _, files in os.walk(osp.join(ROOT, 'tools')):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = osp.join(root, name)
            text = open(path).read()
            imported = set(_mmpl_imports(path, 'tools'))
            if 'tools' in imported or any(
                    word in text for word in ('runpy', 'import_module',
                                              'spec_from_file_location')):
                bad.append(osp.relpath(path, ROOT))
    assert not bad, bad


def test_structures_import_nothing_of_mmpl():
    path = osp.join(PACKAGE, 'structures.py')
    assert list(_mmpl_imports(path, 'mmpl')) == []


def test_moved_names_keep_their_public_paths():
    from mmpl import clip, datasets, models, prompts, structures
    from mmpl.models import classifier
    from mmpl.prompts import base
    for name in ('FrozenImageFeatures', 'TextPrompts', 'VisualPrompts'):
        assert getattr(base, name) is getattr(structures, name)
        assert getattr(prompts, name) is getattr(structures, name)
    for name in ('PromptCLIPOutputs', 'cosine_logits'):
        assert getattr(models, name) is getattr(structures, name)
        assert getattr(classifier, name) is getattr(structures, name)
    assert models.CLIP_MEAN is clip.CLIP_MEAN and models.CLIP_STD is \
        clip.CLIP_STD
    assert datasets.DEFAULT_TEMPLATE == clip.DEFAULT_TEMPLATE == \
        'a photo of a {}.'


SHARED_PROMPT_MODULES = {'base', 'layers', 'context', 'deep'}
#: a method's own parts, split out of its file: part -> the one importer
METHOD_PARTS = {'guidance': 'dgprompt.py'}
#: a method another method extends by subclassing: base -> the extension
#: (DGPrompt = IVLP + guidance + residual)
METHOD_BASES = {'ivlp': 'dgprompt.py'}


def test_method_files_import_no_other_method_file():
    """Shared layers live in prompts/layers.py, not in a method's file."""
    folder = osp.join(PACKAGE, 'prompts')
    bad = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith('.py') or name == '__init__.py':
            continue
        tree = ast.parse(open(osp.join(folder, name)).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module not in SHARED_PROMPT_MODULES and \
                        METHOD_PARTS.get(node.module) != name and \
                        METHOD_BASES.get(node.module) != name:
                    bad.append(f'{name} imports .{node.module}')
    assert not bad, bad


def test_option_checks_have_one_wording():
    from mmpl.utils.checks import check_choice, check_int
    check_choice('x', 'a', ('a', 'b'))
    with pytest.raises(ValueError, match=r"^x must be one of \('a', 'b'\), "
                       r"got 'c'. Choose one of them$"):
        check_choice('x', 'c', ('a', 'b'))
    with pytest.raises(ValueError, match=r"^TVP: x must be one of"):
        check_choice('x', 'c', ['a'], owner='TVP')
    check_int('n', 2, minimum=2)
    for bad in (0, True, 1.0, '1', None):
        with pytest.raises(ValueError, match='^n must be an integer >= 1, '):
            check_int('n', bad)
    with pytest.raises(ValueError, match='^FewShotDataset: num_shots must '
                       'be an integer >= 1, got 0. Set it to one$'):
        check_int('num_shots', 0, owner='FewShotDataset')
    from mmpl.utils.checks import check_device
    check_device('cpu')
    for bad in ('gpu0', 'cuda:99', 3.5):
        with pytest.raises(ValueError, match='^device '):
            check_device(bad)


def test_importing_datasets_does_not_import_open_clip():
    """mmpl.datasets reads the default template from the leaf
    mmpl/constants.py, not through mmpl.clip (which imports open_clip)."""
    import subprocess
    import sys
    proc = subprocess.run(
        [sys.executable, '-c', 'import sys, mmpl.datasets; '
         "print('open_clip' in sys.modules)"],
        capture_output=True, text=True, cwd=ROOT, check=True)
    assert proc.stdout.strip().splitlines()[-1] == 'False'


SHARED_NAMES = ('BASE_KEY', 'NEW_KEY', 'CLIP_MEAN', 'CLIP_STD',
                'DEFAULT_TEMPLATE')


def test_shared_names_are_defined_once():
    """The names several layers use are assigned in mmpl/constants.py only
    (the others import them)."""
    where = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = osp.join(root, name)
            for node in ast.walk(ast.parse(open(path).read())):
                targets = (node.targets if isinstance(node, ast.Assign) else
                           [node.target] if isinstance(node, ast.AnnAssign)
                           else [])
                for t in targets:
                    if isinstance(t, ast.Name) and t.id in SHARED_NAMES:
                        where.setdefault(t.id, []).append(
                            osp.relpath(path, PACKAGE))
    assert where == {n: ['constants.py'] for n in SHARED_NAMES}


def test_the_product_imports_nothing_of_the_lab():
    """mmpl and the tools shipped with it (mmpl/.mim/tools) never import
    the lab (projects/lab, not in the wheel); mmpl.apis, the user's entry
    points, does not import the test support either."""
    bad = []
    for folder in (PACKAGE, osp.join(ROOT, 'tools')):
        for path, package in _python_files(folder):
            for name in _imported_names(path, package):
                if name.split('.')[0] == 'mmpl_lab':
                    bad.append(f'{osp.relpath(path, ROOT)} imports {name}')
    for path, package in _python_files(osp.join(PACKAGE, 'apis')):
        bad += [f'{osp.relpath(path, ROOT)} imports mmpl.testing'
                for imported in _mmpl_imports(path, package)
                if imported == 'testing']
    assert not bad, bad


def test_importing_mmpl_registers_no_toy_architecture():
    """Importing the plugin (all of it) adds no architecture to open_clip's
    list: the tiny test CLIP and the lab's are given by their model
    config files, when asked for."""
    import subprocess
    import sys
    code = ('import open_clip; before = set(open_clip.list_models()); '
            'import mmpl, mmpl.clip, mmpl.models, mmpl.prompts, mmpl.apis, '
            'mmpl.engine, mmpl.testing; '
            'print(sorted(set(open_clip.list_models()) - before))')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, cwd=ROOT, check=True)
    assert proc.stdout.strip().splitlines()[-1] == '[]'


def _module_imports(path: str, package: str, modules: set):
    """The modules of ``modules`` that the module at ``path`` imports
    anywhere (function-level imports included); ``package`` is its dotted
    package, for relative imports. ``from a import b`` is module ``a.b``
    when that is one, else ``a``."""
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                base = '.'.join(parts[:len(parts) - node.level + 1] +
                                ([node.module] if node.module else []))
            names = [f'{base}.{alias.name}' for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition('.')[0]
            if name:
                yield name


def test_no_import_cycle_inside_mmpl():
    """No module of mmpl imports, directly or through others, a module that
    imports it back (function-level imports count: they only hide a
    cycle)."""
    files = {}
    for path, package in _python_files(PACKAGE):
        name = osp.basename(path)[:-3]
        files[package if name == '__init__' else f'{package}.{name}'] = (
            path, package)
    graph = {module: set(_module_imports(path, package, set(files))) -
             {module} for module, (path, package) in files.items()}
    cycles, done = [], set()

    def visit(module, chain):
        if module in chain:
            cycles.append(chain[chain.index(module):] + [module])
            return
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, chain + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert graph['mmpl.clip.adapter'] >= {'mmpl.clip.towers'}  # resolved
    assert not cycles, [' -> '.join(c) for c in cycles]
