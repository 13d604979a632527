"""The `make serving` command: list, canary, promote, rollback, complete, repair, log.

Switches with `--server` run against the TF Serving stand-in watching the same
`models.config` (tests/serving/fake_tf_serving.py), so a success reported here
is one the server's own status shows.
"""

import json
import os

import pytest

from components import atomic_pusher
from contracts import names
from contracts import serving
from serving import model_card
from serving import serving_config
from serving import serving_dir
from serving import serving_lock
from serving import serving_ops
from tests.serving import fake_tf_serving

import serving_admin


@pytest.fixture()
def model_base_dir(exported, tmp_path):
  """Three pushed versions, the middle one with a card, the newest served."""
  base = str(tmp_path / 'serving' / names.MODEL_NAME)
  versions = [int(os.path.basename(atomic_pusher.push_atomically(
      exported.saved_model_dir, base))) for _ in range(3)]
  card = model_card.ModelCard(
      model_name=names.MODEL_NAME, version=versions[1],
      pushed_at='2026-12-01T10:00:00+00:00', run_id='run-2',
      data=model_card.DataSummary('fp', {'benign': 1}, {'test': {'benign': 1}}),
      test_split='test', test_metrics={'accuracy': 0.875, 'malignant_sensitivity': 0.8},
      floors={'accuracy': 0.8, 'malignant_sensitivity': 0.75}, regression_tolerance=0.0,
      baseline_version='', code_fingerprint='c', training_config={})
  model_card.write_card(os.path.join(base, str(versions[1])), card)
  serving_config.write_config_files(names.MODEL_NAME, base,
                                    serving_config.ServedVersions(versions[-1]))
  return base, versions


@pytest.fixture()
def server(model_base_dir, served):
  """TF Serving started on that directory; every version is the same loaded model."""
  base, _ = model_base_dir
  with fake_tf_serving.watching(base, load=lambda path: served) as running:
    yield running


def _main(capsys, *argv):
  status = serving_admin.main(list(argv))
  captured = capsys.readouterr()
  return status, captured.out, captured.err


def test_list_shows_labels_push_time_and_metrics(capsys, model_base_dir):
  base, versions = model_base_dir
  status, out, _ = _main(capsys, '--model-dir', base, 'list')
  lines = out.splitlines()
  assert status == 0 and len(lines) == 4
  assert lines[2].split()[:2] == [str(versions[1]), '-']
  assert '2026-12-01T10:00:00+00:00' in lines[2]
  assert 'accuracy=0.875  malignant_sensitivity=0.800' in lines[2]
  assert lines[3].split()[:2] == [str(versions[2]), 'stable']
  assert '(no model card)' in lines[1]
  status, out, _ = _main(capsys, '--model-dir', base, 'list', '--json')
  listing = json.loads(out)
  assert [v['labels'] for v in listing['versions']] == [[], [], ['stable']]
  assert listing['pending'] is None and listing['problems'] == []


def test_without_a_server_a_switch_is_listed_and_the_list_says_how_to_finish(
    capsys, model_base_dir):
  base, versions = model_base_dir
  status, out, _ = _main(capsys, '--model-dir', base, 'rollback', '--to', str(versions[0]))
  assert status == 0
  assert f'listed {versions[0]}; pending stable -> {versions[0]}' in out
  assert 'ARGS="--server URL complete"' in out
  assert serving_config.read_served_versions(base) == serving_config.ServedVersions(
      versions[-1], loading=(versions[0],))
  status, out, _ = _main(capsys, '--model-dir', base, 'list')
  assert out.splitlines()[1].split()[:2] == [str(versions[0]), '(loading)']
  assert f'pending: stable -> {versions[0]} (rollback at ' in out
  status, _, err = _main(capsys, '--model-dir', base, 'complete')
  assert status == 2 and 'complete needs --server' in err


def test_with_a_server_each_switch_is_made_and_confirmed(capsys, model_base_dir, server):
  base, versions = model_base_dir
  status, out, _ = _main(capsys, '--model-dir', base, '--server', server.url,
                         'rollback', '--to', str(versions[0]))
  assert status == 0, out
  assert f'stable {versions[-1]} -> {versions[0]}  (confirmed by {server.url})' in out
  assert server.labels == {'stable': versions[0]}
  assert _main(capsys, '--model-dir', base, '--server', server.url,
               'canary', str(versions[1]))[0] == 0
  assert server.labels == {'stable': versions[0], 'canary': versions[1]}
  status, out, _ = _main(capsys, '--model-dir', base, '--server', server.url,
                         'promote', str(versions[1]))
  assert status == 0 and f'stable {versions[0]} -> {versions[1]}' in out
  assert server.labels == {'stable': versions[1]}
  assert serving_config.read_served_versions(base) == serving_config.ServedVersions(
      versions[1])
  assert server.refusals == []
  status, out, _ = _main(capsys, '--model-dir', base, 'log')
  assert [line.split()[1] for line in out.splitlines()] == [
      'rollback', 'rollback', 'canary', 'promote', 'promote']
  assert out.count('confirmed by') == 3


def test_complete_finishes_what_a_push_left_pending(capsys, model_base_dir, server):
  base, versions = model_base_dir
  newest = versions[-1] + 1
  atomic_pusher.push_atomically(os.path.join(base, str(versions[0])), base, newest)
  with serving_lock.held(base, 5, "test push"):
    serving_ops.serve_pushed(base, newest, serving_config.read_served_versions(base),
                             keep=5, run_id='run-9')
  assert server.labels == {'stable': versions[-1]}
  status, out, _ = _main(capsys, '--model-dir', base, '--server', server.url, 'complete')
  assert status == 0 and f'stable {versions[-1]} -> {newest}' in out
  assert server.labels == {'stable': newest} and server.refusals == []
  assert serving_ops.pending_switch(base) is None


@pytest.mark.parametrize('argv,message', [
    (['rollback', '--to', '7'], 'version 7 is not in'),
    (['promote', '{newest}'], 'already the stable version'),
])
def test_a_refused_change_is_one_line(capsys, model_base_dir, argv, message):
  base, versions = model_base_dir
  argv = [arg.format(newest=versions[-1]) for arg in argv]
  status, _, err = _main(capsys, '--model-dir', base, *argv)
  assert status == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_missing_folder_is_one_line(capsys, tmp_path):
  status, _, err = _main(capsys, '--model-dir', str(tmp_path / 'nope'), 'list')
  assert status == 2 and 'no such folder' in err


def test_a_damaged_config_names_repair_and_repair_rebuilds_it_from_the_log(
    capsys, model_base_dir, server):
  base, versions = model_base_dir
  assert _main(capsys, '--model-dir', base, '--server', server.url,
               'rollback', '--to', str(versions[1]))[0] == 0
  config = os.path.join(os.path.dirname(base), serving.MODELS_CONFIG_FILE)
  with open(config, 'w') as f:
    f.write('model_config_list { config { name: "busi_cl')
  status, _, err = _main(capsys, '--model-dir', base, 'promote', str(versions[2]))
  assert status == 2 and 'make serving ARGS=repair' in err
  assert len(err.strip().splitlines()) == 1
  status, out, _ = _main(capsys, '--model-dir', base, 'repair')
  assert status == 0 and 'repair' in out
  assert serving_config.read_served_versions(base) == serving_config.ServedVersions(
      versions[1])
  status, _, err = _main(capsys, '--model-dir', base, 'repair')
  assert status == 2 and 'nothing to repair' in err


def test_list_warns_when_a_label_names_a_missing_version(capsys, model_base_dir):
  base, versions = model_base_dir
  serving_dir.remove_versions(base, [versions[-1]])
  status, _, err = _main(capsys, '--model-dir', base, 'list')
  assert status == 0
  assert f'warning: stable names version {versions[-1]}, which is not in' in err
  assert _main(capsys, '--model-dir', base, 'repair')[0] == 0
  assert serving_config.read_served_versions(base).stable == versions[1]


def test_a_server_that_does_not_load_in_time_leaves_the_switch_pending(
    capsys, model_base_dir, served):
  base, versions = model_base_dir
  with fake_tf_serving.watching(base, load=lambda path: served, load_delay_s=60) as slow:
    status, _, err = _main(capsys, '--model-dir', base, '--server', slow.url, '--wait', '0.5',
                           'rollback', '--to', str(versions[0]))
    assert slow.labels == {'stable': versions[-1]} and slow.refusals == []
  assert status == 1 and len(err.strip().splitlines()) == 1
  assert f'has not loaded version {versions[0]} after 0.5 s (state: LOADING)' in err
  assert serving_ops.pending_switch(base).version == versions[0]


def test_a_config_written_without_its_log_line_is_recorded_by_the_next_change(
    capsys, model_base_dir):
  base, versions = model_base_dir
  assert _main(capsys, '--model-dir', base, 'canary', str(versions[1]))[0] == 0
  # A change killed between its config write and its log line.
  serving_config.write_config_files(names.MODEL_NAME, base,
                                    serving_config.ServedVersions(versions[-1]))
  status, _, err = _main(capsys, '--model-dir', base, 'list')
  assert status == 0 and 'a change was interrupted' in err
  assert _main(capsys, '--model-dir', base, 'canary', str(versions[0]))[0] == 0
  log = serving_ops.read_log(base)
  assert [(c.action, c.canary) for c in log] == [
      ('canary', versions[1]), ('recorded', None), ('canary', versions[0])]
  assert log[-1].served() == serving_config.read_served_versions(base)
  assert serving_ops.problems(base) == []
