"""The Dockerfile, checked without a Docker engine: lint, pins, and what the spec expects.

No image can be built here, so these are the ways it can silently drift: a
version that differs from the lock the tests ran with, a package installed
outside the lock, or a path the compiled pipeline refers to that the image
does not have.
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
_PROJECT_PACKAGES = ('contracts', 'dataset', 'blessing', 'serving', 'components', 'models',
                     'pipeline', 'orchestration')


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
  [base] = arguments_of('FROM')
  assert re.fullmatch(rf'tensorflow/tfx:{re.escape(locked_versions()["tfx"])}'
                      r'(@sha256:[0-9a-f]{64})?', base), base


def lock_lines() -> List[str]:
  with open(os.path.join(_PROJECT_DIR, 'requirements.lock')) as f:
    return [line.strip() for line in f
            if line.strip() and not line.lstrip().startswith('#')]


def test_the_lock_pins_every_package_exactly():
  unpinned = [line for line in lock_lines()
              if not re.fullmatch(r'[A-Za-z0-9_.-]+==[A-Za-z0-9_.+!-]+', line)]
  assert not unpinned


def test_the_image_installs_the_lock_and_nothing_else():
  assert 'requirements.lock .' in arguments_of('COPY')
  install = 'pip install --no-cache-dir --no-deps -r requirements.lock'
  assert [arguments for arguments in arguments_of('RUN') if 'pip' in arguments.split()] == [
      install]
  # Installed before the code is copied, so a code change reuses that layer.
  assert DOCKERFILE.index(('RUN', install)) < DOCKERFILE.index(
      ('COPY', 'components/ components/'))


def test_the_steps_run_as_a_user_without_root():
  users = arguments_of('USER')
  assert users and users[-1] not in ('root', '0')


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
