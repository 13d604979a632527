"""bench/gpu_check.py without a GPU: one line and no work; its CPU part on a tiny model."""

import os
import subprocess
import sys

import numpy as np
import pytest

from bench import gpu_check

pytestmark = pytest.mark.e2e

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['--model', 'busi_net', '--image-size', '32', '--examples', '12', '--epochs', '1',
        '--batch-size', '6']


def _env():
  return {**os.environ, 'PYTHONPATH': _PROJECT_DIR, 'TF_USE_LEGACY_KERAS': '1',
          'TF_CPP_MIN_LOG_LEVEL': '2', 'CUDA_VISIBLE_DEVICES': '-1'}


def test_without_a_gpu_it_stops_with_one_line_before_any_work(tmp_path):
  work_dir = tmp_path / 'work'
  result = subprocess.run(
      [sys.executable, os.path.join(_PROJECT_DIR, 'bench', 'gpu_check.py'), *TINY,
       '--work-dir', str(work_dir)],
      env=_env(), capture_output=True, text=True, check=False)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      'gpu_check: needs 1 GPU(s) but TensorFlow sees 0: run it on a machine where '
      'nvidia-smi lists a GPU')
  assert 'Traceback' not in result.stderr
  assert not work_dir.exists()


def test_the_cpu_part_trains_with_the_trainer_and_serves_the_model_it_is_given(tmp_path):
  """As on a GPU machine, but the given model was trained here, in this process."""
  args = gpu_check.parse_args(TINY + ['--work-dir', str(tmp_path)])
  config = gpu_check.config_of(args)
  gpu_check.write_examples(config, args.examples, args.work_dir)
  trained = gpu_check.train(config, args.work_dir, 'here')
  assert trained.steps == 2 and trained.seconds_per_step > 0
  scores_here = gpu_check.serve(trained.serving_model_dir, gpu_check.probe_images())
  assert scores_here.shape == (gpu_check.PROBE_COUNT, 3)
  cpu = gpu_check.cpu_part(args, trained.serving_model_dir)
  assert cpu['cpu_seconds_per_step'] > 0
  assert np.max(np.abs(np.array(cpu['scores']) - scores_here)) <= gpu_check.SCORE_TOLERANCE
