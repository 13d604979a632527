"""The `make serving` command: list, canary, promote, rollback, log."""

import json
import os

import pytest

from components import atomic_pusher
from contracts import names
from serving import model_card
from serving import serving_config
from serving import serving_dir
from serving import serving_ops

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
  for relpath, text in model_card.card_files(card).items():
    path = os.path.join(base, str(versions[1]), relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
      f.write(text)
  serving_ops.set_served(base, None, serving_config.ServedVersions(versions[-1]), 'push')
  return base, versions


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
  assert [v['labels'] for v in json.loads(out)] == [[], [], ['stable']]


def test_canary_promote_rollback_and_the_log(capsys, model_base_dir):
  base, versions = model_base_dir
  assert _main(capsys, '--model-dir', base, 'rollback', '--to', str(versions[0]))[0] == 0
  assert serving_dir.served_model_path(base).endswith(f'/{versions[0]}')
  assert _main(capsys, '--model-dir', base, 'canary', str(versions[1]))[0] == 0
  assert serving_config.read_served_versions(base) == serving_config.ServedVersions(
      versions[0], canary=versions[1])
  status, out, _ = _main(capsys, '--model-dir', base, 'promote', str(versions[1]))
  assert status == 0 and f'stable {versions[0]} -> {versions[1]}' in out
  assert serving_config.read_served_versions(base) == serving_config.ServedVersions(
      versions[1])
  status, out, _ = _main(capsys, '--model-dir', base, 'log')
  assert [line.split()[1] for line in out.splitlines()] == [
      'push', 'rollback', 'canary', 'promote']


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
