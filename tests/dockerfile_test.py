"""The Dockerfile, checked without a Docker engine: lint, pins, and what the spec expects.

No image can be built here, so these are the ways it can silently drift: a
version that differs from the lock the tests ran with, or a path the compiled
pipeline refers to that the image does not have.
"""

import os
import re
import subprocess
import sys
from typing import Dict, List, Tuple

from orchestration.kubeflow import configs as kubeflow_configs

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_HADOLINT = os.path.join(os.path.dirname(sys.executable), 'hadolint')
# Packages the executors import beyond the standard library, TFX and its dependencies.
_PROJECT_PACKAGES = ('contracts', 'dataset', 'components', 'models', 'pipeline')


def _normalized(name: str) -> str:
  return re.sub(r'[-_.]+', '-', name).lower()


def instructions(path: str) -> List[Tuple[str, str]]:
  """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
  with open(path) as f:
    text = re.sub(r'\\\n', ' ', '\n'.join(
        line for line in f.read().splitlines() if not line.lstrip().startswith('#')))
  return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
          for line in text.splitlines() if line.strip()]


def locked_versions() -> Dict[str, str]:
  with open(os.path.join(_PROJECT_DIR, 'requirements.lock')) as f:
    return {_normalized(name): version for name, version in
            re.findall(r'^([A-Za-z0-9_.-]+)==(\S+)$', f.read(), re.MULTILINE)}


DOCKERFILE = instructions(os.path.join(_PROJECT_DIR, 'Dockerfile'))


def arguments_of(instruction: str) -> List[str]:
  return [arguments for name, arguments in DOCKERFILE if name == instruction]


def test_hadolint_finds_nothing():
  result = subprocess.run([_HADOLINT, '--no-color', 'Dockerfile'], cwd=_PROJECT_DIR,
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_the_locked_tfx_release():
  assert arguments_of('FROM') == [f'tensorflow/tfx:{locked_versions()["tfx"]}']


def test_every_pip_pin_matches_the_lock():
  locked = locked_versions()
  pins = re.findall(r'([A-Za-z0-9_.-]+)==(\S+)', ' '.join(arguments_of('RUN')))
  assert pins
  for name, version in pins:
    assert locked.get(_normalized(name)) == version, name


def test_the_project_lands_where_the_compiled_spec_looks():
  assert arguments_of('WORKDIR') == [kubeflow_configs.IMAGE_PROJECT_DIR]
  copied = {arguments.split()[0].rstrip('/') for arguments in arguments_of('COPY')}
  schema_dir = os.path.relpath(os.path.dirname(kubeflow_configs.IMAGE_SCHEMA_FILE),
                               kubeflow_configs.IMAGE_PROJECT_DIR)
  assert copied >= {*_PROJECT_PACKAGES, schema_dir}
  assert os.path.isfile(os.path.join(
      _PROJECT_DIR, os.path.relpath(kubeflow_configs.IMAGE_SCHEMA_FILE,
                                    kubeflow_configs.IMAGE_PROJECT_DIR)))


def test_environment_selects_keras_2_and_the_project_path():
  environment = dict(re.findall(r'(\w+)=(\S+)', ' '.join(arguments_of('ENV'))))
  assert environment['TF_USE_LEGACY_KERAS'] == '1'
  assert kubeflow_configs.IMAGE_PROJECT_DIR in environment['PYTHONPATH'].split(':')


def test_data_outputs_and_environments_stay_out_of_the_build_context():
  with open(os.path.join(_PROJECT_DIR, '.dockerignore')) as f:
    ignored = {line.strip() for line in f if line.strip() and not line.startswith('#')}
  assert ignored >= {'.git', '.venv', 'data', 'outputs'}
