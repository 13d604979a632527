"""The robustness suite: messy folders, bad flags and faults, as a user meets them.

Each case runs `local_runner.main` (or, for faults inside ExampleGen, its
executor) and asserts the exit code, that the message names the file or flag
and says what to do, that no traceback reaches the user, and that the audit
accounts for every file. No case trains: each stops before any work or at
ExampleGen, the first component, and the cases that need a pipeline run share
one.
"""

import errno
import os
import subprocess
import sys

import pytest
import tensorflow as tf
from tfx.dsl.io import fileio

import local_runner
from components.image_example_gen import executor_test
from dataset import data_audit
from dataset import split_plan
from tests.fixtures import synthetic_busi
from tests.robustness import messy

pytestmark = pytest.mark.e2e


def _main(capfd, *argv):
  """(exit code, stderr) of local_runner.main; stderr holds the logs too."""
  code = local_runner.main(list(argv))
  return code, capfd.readouterr().err


def _no_traceback(stderr):
  assert 'Traceback' not in stderr, stderr[-3000:]


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  return synthetic_busi.write_dataset(str(tmp_path_factory.mktemp('tiny') / 'data'),
                                      per_class=3)


@pytest.mark.parametrize('flags, expected', [
    (['--epochs', '0'], '--epochs must be at least 1'),
    (['--batch-size', '0'], '--batch-size must be at least 1'),
    (['--image-size', '0'], '--image-size must be at least 32'),
    (['--image-size', '-8'], '--image-size must be at least 32'),
    (['--keep-versions', '0'], '--keep-versions must be at least 1'),
    (['--min-accuracy', '2'], '--min-accuracy must be a number from 0 to 1'),
    (['--min-malignant-recall', '-0.5'], '--min-malignant-recall must be a number from 0 to 1'),
    (['--regression-tolerance', '3'], '--regression-tolerance must be a number from 0 to 1'),
    (['--min-site-malignant-examples', '0'], '--min-site-malignant-examples must be at least 1'),
])
def test_a_bad_value_stops_before_any_work_with_one_line(tiny, tmp_path, capfd, flags,
                                                          expected):
  out = tmp_path / 'out'
  code, stderr = _main(capfd, '--data-root', tiny, '--output-dir', str(out), *flags)
  assert code == 2
  lines = stderr.strip().splitlines()
  assert len(lines) == 1, stderr
  assert lines[0].startswith(f'local_runner.py: error: {expected}')
  assert lines[0].endswith(f'got {flags[1]}') or lines[0].endswith(f'got {float(flags[1])}')
  assert not out.exists()


@pytest.mark.parametrize('flags, expected', [
    (['--beam-workers', '-1'], '--beam-workers must be 0 (one per core) or more'),
    (['--splits', '70,0,30'], '--splits must all be positive'),
    (['--max-quarantined-fraction', '2'], '--max-quarantined-fraction takes a number'),
])
def test_a_bad_runner_flag_is_a_usage_error(tiny, capfd, flags, expected):
  with pytest.raises(SystemExit) as exit_info:
    local_runner.main(['--data-root', tiny, *flags])
  assert exit_info.value.code == 2
  assert expected in capfd.readouterr().err


@pytest.mark.parametrize('layout, expected', [
    (messy.capitalised_class_folder,
     "found folder 'Benign' in {root}; class folders must be named exactly benign/, "
     "malignant/, normal/ (lower case, no spaces): rename 'Benign' to 'benign'"),
    (messy.one_level_too_high,
     'data root looks one level too high: did you mean {root}/Dataset_BUSI_with_GT?'),
    (messy.data_root_is_a_file, 'data root {root} is a file, not a folder'),
    (lambda root: root, 'data root {root} does not exist'),
])
def test_a_wrong_data_root_names_the_real_cause(tmp_path, capfd, layout, expected):
  root = layout(str(tmp_path / 'data'))
  code, stderr = _main(capfd, '--data-root', root, '--output-dir', str(tmp_path / 'out'))
  assert code == 2
  assert expected.format(root=root) in stderr
  assert 'Download BUSI' not in stderr
  assert not (tmp_path / 'out').exists()


@pytest.fixture(scope='module')
def messy_run(tmp_path_factory):
  """One run of the pipeline on the messy folder; it stops at the data audit."""
  base = tmp_path_factory.mktemp('messy_run')
  root = messy.write_messy_folder(str(base / 'data'))
  process = subprocess.run(
      [sys.executable, local_runner.__file__, '--data-root', root, '--output-dir',
       str(base / 'out')], capture_output=True, text=True, check=False,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
  return {'root': root, 'out': base / 'out', 'process': process}


def test_an_audit_stop_points_at_a_report_that_exists(messy_run):
  process = messy_run['process']
  assert process.returncode == 1, process.stderr[-3000:]
  _no_traceback(process.stderr)
  assert 'Stopped at the data audit:' in process.stderr
  report = process.stderr.split('Full report: ')[1].splitlines()[0]
  assert os.path.isfile(report)
  assert str(messy_run['out']) in report
  text = open(report, encoding='utf-8').read()
  for relpath in messy.CASES:
    assert relpath.replace('\n', ' ') in text, relpath


def test_the_stopped_audit_accounts_for_every_file_once(messy_run):
  report = messy_run['process'].stderr.split('Full report: ')[1].splitlines()[0]
  audit = data_audit.read(os.path.dirname(report))
  outcomes = data_audit.outcomes(audit)
  assert set(outcomes) == messy.listing(messy_run['root'])
  entries = [*audit.ingested_files, *audit.quarantined, *audit.ignored]
  named = [n for entry in entries for n in (entry.file, *entry.masks)]
  assert len(named) == len(set(named))
  reasons = {q.file: q.reason for q in audit.quarantined}
  for relpath, words in messy.CASES.items():
    assert words in reasons[relpath], (relpath, reasons.get(relpath))


def test_a_corrupt_metadata_store_says_how_to_start_afresh(tiny, tmp_path, capfd):
  out = tmp_path / 'out'
  out.mkdir()
  (out / 'metadata.sqlite').write_bytes(b'not a database' * 200)
  code, stderr = _main(capfd, '--data-root', tiny, '--output-dir', str(out))
  assert code == 1
  _no_traceback(stderr)
  store = out / 'metadata.sqlite'
  assert f'The ML Metadata store {store} is unreadable' in stderr
  assert f'mv {store} {store}.corrupt' in stderr
  assert not (out / 'tfx').exists()


def _tmpfs(folder, size):
  os.makedirs(folder)
  mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs',
                            str(folder)], capture_output=True, check=False)
  return mounted.returncode == 0


def test_a_full_disk_ends_in_one_message(tiny, tmp_path, capfd, monkeypatch):
  out = tmp_path / 'small_disk'
  mounted = _tmpfs(out, '192k')
  if not mounted:  # No permission to mount: the audit's writer meets a full disk.
    def full(*_):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(data_audit, 'write', full)
  try:
    code, stderr = _main(capfd, '--data-root', tiny, '--output-dir', str(out))
  finally:
    if mounted:
      subprocess.run(['umount', str(out)], check=False)
  assert code == 1, stderr[-3000:]
  assert 'Stopped: The disk is full' in stderr
  assert f'Free space on the disk that holds {out}' in stderr


def _audit_after(tmp_path, monkeypatch, fault):
  root = synthetic_busi.write_dataset(str(tmp_path / 'data'), per_class=4)
  fault(root, monkeypatch)
  out = executor_test.run_executor(root, str(tmp_path / 'examples'))
  return data_audit.read(out), root


def test_an_unreadable_file_is_quarantined(tmp_path, monkeypatch):
  original = fileio.open

  def unreadable(root, monkeypatch):
    def guarded(path, *args, **kwargs):
      if path.endswith('benign (2).png'):
        raise tf.errors.PermissionDeniedError(None, None, f'{path}; Permission denied')
      return original(path, *args, **kwargs)
    monkeypatch.setattr(fileio, 'open', guarded)

  audit, root = _audit_after(tmp_path, monkeypatch, unreadable)
  reasons = {q.file: q.reason for q in audit.quarantined}
  assert 'Permission denied' in reasons['benign/benign (2).png']
  assert set(data_audit.outcomes(audit)) == messy.listing(root)


def test_a_file_that_vanishes_mid_run_is_quarantined(tmp_path, monkeypatch):
  plan_splits = split_plan.plan_splits

  def vanishing(root, monkeypatch):
    def plan_then_delete(*args):
      os.remove(os.path.join(root, 'normal', 'normal (3).png'))
      return plan_splits(*args)
    monkeypatch.setattr(split_plan, 'plan_splits', plan_then_delete)

  audit, _ = _audit_after(tmp_path, monkeypatch, vanishing)
  reasons = {q.file: q.reason for q in audit.quarantined}
  assert 'after it was first read' in reasons['normal/normal (3).png']
  assert 'normal/normal (3).png' not in {f.file for f in audit.ingested_files}
  assert audit.ingested == 11
  assert sum(sum(c.values()) for c in audit.split_counts.values()) == 11
