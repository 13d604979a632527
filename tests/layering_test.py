"""The layers read from the ground up: no module imports from a layer above its own.

Imports are read from the source (ast), nothing is imported, so the check is
cheap and sees imports inside functions too. Tests (`*_test.py`, conftest.py
and tests/) sit on top of everything and may import anything; no other module
may import them, except that the benches read the generated data and exported
models they share with the tests from tests/fixtures/.
"""

import ast
import os
import sys
from typing import Iterator, List, Tuple

import pytest

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# From the ground up; a module may import its own package and the layers below
# it, never a layer above, nor another package of its own layer.
LAYERS: Tuple[Tuple[str, ...], ...] = (
    ('contracts',),                 # plain values: configs, data and serving contracts, names
    ('dataset', 'models', 'blessing'),  # data libraries; the model families and their
                                        # training; the rules that bless a model
    ('serving',),                   # TF Serving's directory: versions, configs, operations, cards
    ('components',),                # TFX components
    ('pipeline',),                  # the DAG
    ('observability',),             # progress lines, the run read back from ML Metadata
    ('orchestration', 'run_report'),  # local and Kubeflow runs; the HTML report
    ('local_runner', 'kubeflow_runner', 'predict', 'report', 'serving_admin', 'site_threshold',
     'bench'),                                                      # programs
)
_LAYER_OF = {package: level for level, packages in enumerate(LAYERS)
             for package in packages}
_TESTS = 'tests'
# What the benches may read from the tests: the shared generated data.
_FIXTURES = 'tests.fixtures'
_SKIPPED_DIRS = {'.git', '.venv', '.ci', 'outputs', 'data', '__pycache__'}


def _is_test(relpath: str) -> bool:
  name = os.path.basename(relpath)
  return (relpath.split(os.sep)[0] == _TESTS or name.endswith('_test.py')
          or name == 'conftest.py')


def project_modules() -> Iterator[str]:
  """Paths, relative to the checkout, of every Python file of the project."""
  for folder, dirs, files in os.walk(_PROJECT_DIR):
    dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith('.'))
    for name in sorted(files):
      if name.endswith('.py'):
        yield os.path.relpath(os.path.join(folder, name), _PROJECT_DIR)


def imported_modules(relpath: str) -> List[str]:
  with open(os.path.join(_PROJECT_DIR, relpath), encoding='utf-8') as f:
    tree = ast.parse(f.read(), relpath)
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found += [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      found += [f'{node.module}.{alias.name}' for alias in node.names]
  return found


def _top(relpath: str) -> str:
  return os.path.splitext(relpath.split(os.sep)[0])[0]


def layering_violations(relpath: str) -> List[str]:
  """One line per import of `relpath` that reads from above its layer or from tests."""
  if _is_test(relpath):
    return []
  own = _top(relpath)
  if own not in _LAYER_OF:
    return [f'{relpath}: its package {own!r} is in no layer of LAYERS']
  violations = []
  for module in imported_modules(relpath):
    parts = module.split('.')
    target = parts[0]
    shared_fixture = own == 'bench' and module.startswith(_FIXTURES + '.')
    if ((target == _TESTS and not shared_fixture)
        or any(part.endswith('_test') for part in parts)):
      violations.append(f'{relpath} imports test code: {module}')
    elif target in _LAYER_OF and target != own and _LAYER_OF[target] >= _LAYER_OF[own]:
      violations.append(f'{relpath} (layer {_LAYER_OF[own]}) imports {module} '
                        f'(layer {_LAYER_OF[target]})')
  return violations


def test_no_module_imports_from_a_higher_layer_or_from_tests():
  violations = [line for relpath in project_modules()
                for line in layering_violations(relpath)]
  assert not violations, '\n'.join(violations)


def test_the_contracts_need_only_the_standard_library():
  outside = [f'{relpath} imports {module}' for relpath in project_modules()
             if _top(relpath) == 'contracts' and not _is_test(relpath)
             for module in imported_modules(relpath)
             if module.split('.')[0] not in (*sys.stdlib_module_names, 'contracts')]
  assert not outside, '\n'.join(outside)


@pytest.mark.parametrize('source, expected', [
    ('from pipeline import pipeline\n', 'imports pipeline.pipeline (layer 4)'),
    ('def f():\n  import local_runner\n', 'imports local_runner (layer 7)'),
    ('from tests import synthetic_busi\n', 'imports test code'),
    ('from tests.fixtures import synthetic_busi\n', 'imports test code'),
])
def test_an_upward_import_is_found(tmp_path, monkeypatch, source, expected):
  (tmp_path / 'models').mkdir()
  (tmp_path / 'models' / 'upward.py').write_text(source)
  monkeypatch.setattr(sys.modules[__name__], '_PROJECT_DIR', str(tmp_path))
  [violation] = layering_violations(os.path.join('models', 'upward.py'))
  assert expected in violation


@pytest.mark.parametrize('source, allowed', [
    ('from tests.fixtures import synthetic_busi\n', True),
    ('from tests import site_data\n', False),
])
def test_the_benches_read_only_the_shared_fixtures_of_the_tests(
    tmp_path, monkeypatch, source, allowed):
  (tmp_path / 'bench').mkdir()
  (tmp_path / 'bench' / 'a_bench.py').write_text(source)
  monkeypatch.setattr(sys.modules[__name__], '_PROJECT_DIR', str(tmp_path))
  violations = layering_violations(os.path.join('bench', 'a_bench.py'))
  assert (violations == []) == allowed
