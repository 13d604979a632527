"""Version switches replayed through TF Serving's label rule (the stand-in), in turn and at once.

What must hold: no change ever leaves the server refusing a config (a label
moved to a version it has not loaded), every success reported is a label map
the server applied, and `models.config`, the serving log and the server agree.
"""

import os
import subprocess
import sys
import threading

import pytest
from tfx.utils import io_utils

from components import atomic_pusher
from contracts import names
from serving import server_status
from serving import serving_config
from serving import serving_lock
from serving import serving_ops
from tests.serving import fake_tf_serving

import serving_admin

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _push(model_dir: str, base: str) -> int:
  """What the Pusher's executor does, under the serving lock."""
  with serving_lock.held(base, 60, 'test push'):
    before = serving_config.read_served_versions(base)
    version = atomic_pusher.next_version(base)
    atomic_pusher.push_atomically(model_dir, base, version)
    serving_ops.serve_pushed(base, version, before, keep=5, run_id='test')
  return version


def _labels(served: serving_config.ServedVersions):
  return {'stable': served.stable, **({'canary': served.canary} if served.canary else {})}


def _assert_the_server_made_it(tfs, base, changes):
  """No refusal, every label on a loaded version, each confirmed change applied."""
  assert tfs.refusals == []
  assert all(tfs.versions[v].state == 'AVAILABLE' for v in tfs.labels.values())
  for change in changes:
    if change.confirmed_by:
      assert _labels(change.served()) in tfs.label_history
  assert tfs.labels == _labels(serving_config.read_served_versions(base))


def test_push_canary_promote_rollback_push_through_the_label_rule(exported, served, tmp_path):
  model_dir = str(tmp_path / 'model')
  io_utils.copy_dir(exported.saved_model_dir, model_dir)
  base = str(tmp_path / 'serving' / names.MODEL_NAME)
  first = _push(model_dir, base)                       # no label yet: one step
  with fake_tf_serving.watching(base, load=lambda path: served, load_delay_s=0.3) as tfs:
    status = server_status.ServerStatus(tfs.url, names.MODEL_NAME)
    second = _push(model_dir, base)                    # pending until loaded
    assert tfs.labels == {'stable': first}
    changes = serving_ops.complete(base, status, wait_s=30)
    _assert_the_server_made_it(tfs, base, changes)
    assert tfs.labels == {'stable': second}
    third = _push(model_dir, base)
    changes = serving_ops.stage_canary(base, third, status, wait_s=30)
    _assert_the_server_made_it(tfs, base, changes)
    assert tfs.labels == {'stable': second, 'canary': third}
    changes = serving_ops.promote(base, third, status, wait_s=30)
    _assert_the_server_made_it(tfs, base, changes)
    assert tfs.labels == {'stable': third}
    changes = serving_ops.rollback(base, first, status, wait_s=30)   # no longer listed
    _assert_the_server_made_it(tfs, base, changes)
    assert tfs.labels == {'stable': first}
    fourth = _push(model_dir, base)
    changes = serving_ops.complete(base, status, wait_s=30)
    _assert_the_server_made_it(tfs, base, changes)
    assert tfs.labels == {'stable': fourth}
  log = serving_ops.read_log(base)
  assert log[-1].served() == serving_config.read_served_versions(base)
  assert [(c.action, c.pending_version is None) for c in log] == [
      ('push', True), ('push', False), ('push', True), ('push', False), ('canary', True),
      ('promote', False), ('promote', True), ('rollback', False), ('rollback', True),
      ('push', False), ('push', True)]


@pytest.mark.integration
def test_many_commands_at_once_serialise_and_every_success_is_a_switch_made(
    exported, served, tmp_path):
  base = str(tmp_path / 'serving' / names.MODEL_NAME)
  versions = [1, 2, 3, 4]
  for version in versions:
    io_utils.copy_dir(exported.saved_model_dir, os.path.join(base, str(version)))
  serving_config.write_config_files(names.MODEL_NAME, base,
                                    serving_config.ServedVersions(4))
  commands = [['rollback', '--to', '1'], ['canary', '2'], ['promote', '2'],
              ['rollback', '--to', '1'], ['canary', '3'], ['promote', '3'], ['promote', '4']]
  # keep=5 in the pushes: versions 1 and 2 may be pruned unless labelled, so a
  # command may also fail for a version gone, with its one line.
  with fake_tf_serving.watching(base, load=lambda path: served, load_delay_s=0.1) as tfs:
    processes = [subprocess.Popen(
        [sys.executable, os.path.join(_PROJECT_DIR, 'serving_admin.py'), '--model-dir', base,
         '--server', tfs.url, '--wait', '120', *command],
        cwd=_PROJECT_DIR, env={**os.environ, 'PYTHONPATH': _PROJECT_DIR},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for command in commands]
    # Two pushes from this process meanwhile, as the Pusher makes them.
    pushes = threading.Thread(target=lambda: [_push(exported.saved_model_dir, base)
                                              for _ in range(2)])
    pushes.start()
    results = [(p.wait(timeout=600), *p.communicate()) for p in processes]
    pushes.join(timeout=600)
    log = serving_ops.read_log(base)
    assert tfs.refusals == []
    assert tfs.labels == _labels(serving_config.read_served_versions(base))
  assert log[-1].served() == serving_config.read_served_versions(base)
  # Both pushes, made between the commands, are in the same chain of changes.
  assert [change.action for change in log].count('push') == 2
  # One change after another: each starts from what the one before left.
  for before, after in zip(log, log[1:]):
    assert (after.previous_stable, after.previous_canary) == (before.stable, before.canary)
  logged = [serving_admin.change_line(change) for change in log]
  succeeded = [out for status, out, _ in results if status == 0]
  assert succeeded
  for out in succeeded:
    lines = [line for line in out.splitlines() if not line.startswith('pending:')]
    assert lines and all(line in logged for line in lines)
    confirmed = [c for c in log if serving_admin.change_line(c) == lines[-1]]
    assert confirmed[0].confirmed_by == tfs.url
    assert _labels(confirmed[0].served()) in tfs.label_history
  for status, _, err in results:
    errors = [line for line in err.splitlines() if line.startswith('serving: error: ')]
    assert (status, len(errors)) in ((0, 0), (2, 1)), err
