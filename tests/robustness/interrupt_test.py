"""A run stopped by a signal ends in one line and exit 1, and the rerun resumes.

The runner is started as a user starts it, in its own process with SIGINT at
its default (a shell's background job would ignore it), and stopped once
ImageExampleGen has finished: by SIGINT (Ctrl-C), then, on the rerun, by
SIGTERM (what `kill` and schedulers send) once the rerun has passed the
finished components again, which it took from the cache.
"""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

import local_runner
from tests.fixtures import synthetic_busi

_TIMEOUT_S = 240


def _start(root: str, out: str) -> subprocess.Popen:
  return subprocess.Popen(
      [sys.executable, local_runner.__file__, '--data-root', root, '--output-dir', out,
       '--model', 'seed_cnn', '--epochs', '50'],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONUNBUFFERED='1'),
      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _stop_after(process: subprocess.Popen, line_start: str, signum: int):
  """Sends `signum` once stdout shows a line containing `line_start`; (code, out, err)."""
  seen = []
  deadline = time.time() + _TIMEOUT_S
  for line in process.stdout:
    seen.append(line)
    if line_start in line or time.time() > deadline:
      break
  process.send_signal(signum)
  out, err = process.communicate(timeout=_TIMEOUT_S)
  return process.returncode, ''.join(seen) + out, err


@pytest.mark.integration
def test_a_signal_stops_the_run_with_one_line_and_the_rerun_resumes(tmp_path):
  root = synthetic_busi.write_dataset(str(tmp_path / 'data'), per_class=3)
  out = str(tmp_path / 'out')

  code, stdout, stderr = _stop_after(_start(root, out), 'StatisticsGen started', signal.SIGINT)
  assert code == 1, stderr[-3000:]
  assert 'Traceback' not in stderr, stderr[-3000:]
  assert stderr.strip().splitlines()[-1] == (
      'Stopped by SIGINT while the pipeline ran. Rerun the same command to resume: the '
      'components that finished are reused from the cache.')
  assert 'ImageExampleGen finished' in stdout

  code, stdout, stderr = _stop_after(_start(root, out), 'StatisticsGen started', signal.SIGTERM)
  assert code == 1, stderr[-3000:]
  assert 'Traceback' not in stderr, stderr[-3000:]
  assert stderr.strip().splitlines()[-1].startswith('Stopped by SIGTERM while the pipeline ran.')
  cached = re.search(r'ImageExampleGen finished in ([0-9.]+) s', stdout)
  assert cached and float(cached.group(1)) < 3, stdout


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_runner_starts_is_one_line_and_exit_2(tmp_path, signum):
  process = _start(str(tmp_path / 'data'), str(tmp_path / 'out'))
  time.sleep(1)
  process.send_signal(signum)
  _, err = process.communicate(timeout=_TIMEOUT_S)
  assert process.returncode == 2, err[-3000:]
  assert err.strip().splitlines()[-1] == (
      f'Stopped by {signal.Signals(signum).name} before the pipeline ran; nothing was run.')
  assert 'Traceback' not in err
