"""local_runner under failure: a failed run resumes from cache; runs never overlap.

The resume test makes the Evaluator fail once (its split does not exist), then
reruns with the split fixed and reads ML Metadata: everything upstream of the
Evaluator must be CACHED, not recomputed. It then deletes the serving
directory and reruns: the Pusher must push again rather than report the
deleted version from its cache. The lock test holds the output dir's lock from
a second process, as a concurrent run would.
"""

import dataclasses
import fcntl
import os
import shutil
import subprocess
import sys

import pytest

import local_runner
from contracts import features
from observability import run_summary
from tests.fixtures import synthetic_busi

pytestmark = pytest.mark.e2e

_FAST = ['--model', 'seed_cnn', '--image-size', '32', '--epochs', '1', '--beam-workers', '1',
         '--min-accuracy', '0', '--min-malignant-recall', '0']
_UPSTREAM = ('ImageExampleGen', 'StatisticsGen', 'ImportSchemaGen', 'ExampleValidator',
             'DataValidationGate', 'DataDriftCheck', 'Transform', 'Trainer')


def test_a_failed_run_resumes_from_cached_upstream_outputs(tmp_path):
  data = synthetic_busi.write_dataset(str(tmp_path / 'data'), per_class=8)
  args = local_runner.parse_args(['--data-root', data, '--output-dir',
                                  str(tmp_path / 'out'), *_FAST])
  config = local_runner.build_config(args, data)
  broken = dataclasses.replace(config, evaluation=dataclasses.replace(
      config.evaluation, eval_split='no_such_split'))
  with pytest.raises(Exception):
    local_runner.run(broken)

  assert local_runner.run(config) == 0
  summary = run_summary.summarize(config.metadata_path, config.pipeline_name,
                                  features.CLASS_NAMES)
  cached = {c.component: c.cached for c in summary.components}
  assert all(cached[name] for name in _UPSTREAM), cached
  assert not cached['ServedBaselineEvaluator'] and not cached['Pusher']
  assert summary.pushed_path
  assert summary.data_audit.startswith('Data audit: 24 images ingested')

  shutil.rmtree(config.serving_dir)
  assert local_runner.run(config) == 0
  rerun = run_summary.summarize(config.metadata_path, config.pipeline_name,
                                features.CLASS_NAMES)
  assert not {c.component: c.cached for c in rerun.components}['Pusher']
  assert rerun.pushed_path and os.path.isdir(rerun.pushed_path)


def test_a_second_run_on_the_same_output_dir_is_refused(tmp_path, capsys):
  out = tmp_path / 'out'
  out.mkdir()
  holder = subprocess.Popen(
      [sys.executable, '-c',
       'import fcntl, sys\n'
       f'lock = open({str(out / local_runner.LOCK_FILE_NAME)!r}, "a+")\n'
       'fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)\n'
       'lock.write("pid of the first run")\n'
       'lock.flush()\n'
       'print("locked", flush=True)\n'
       'sys.stdin.read()\n'],
      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'locked'
    data = synthetic_busi.write_dataset(str(tmp_path / 'data'), per_class=3)
    assert local_runner.main(['--data-root', data, '--output-dir', str(out)]) == 2
  finally:
    holder.communicate('')
  message = capsys.readouterr().err
  assert f'--output-dir {out} is in use by another run (pid of the first run)' in message
  assert not (out / 'metadata.sqlite').exists()
  with open(out / local_runner.LOCK_FILE_NAME) as lock:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # Free once the first run ends.
