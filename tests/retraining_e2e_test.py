"""Runs over time under LocalDagRunner: unchanged data is a no-op, grown data keeps old splits.

One output folder serves every run, as a scheduled job's would: the first run
pushes, the second (nothing new) stops at once, the third (new images) trains
again, warm-started from the served model, and its old images are where the
served model had them.
"""

import os
import time

import pytest

import local_runner
from components.image_example_gen import executor_test
from dataset import split_ledger
from serving import model_card
from serving import serving_dir
from tests.fixtures import synthetic_busi

pytestmark = pytest.mark.e2e

_FAST = ['--model', 'seed_cnn', '--image-size', '32', '--epochs', '1', '--beam-workers', '1',
         '--min-accuracy', '0', '--min-malignant-recall', '0', '--regression-tolerance', '1']


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
  root = tmp_path_factory.mktemp('retraining')
  return {'data': synthetic_busi.write_dataset(str(root / 'data'), per_class=10),
          'out': str(root / 'out'), 'new': str(root / 'new')}


def _run(workspace, *flags):
  return local_runner.main(['--data-root', workspace['data'],
                            '--output-dir', workspace['out'], *_FAST, *flags])


def _served_card(workspace):
  base = os.path.join(workspace['out'], 'serving_model', 'busi_classifier')
  return model_card.read_card(serving_dir.served_model_path(base))


def test_the_first_run_pushes_a_card_naming_its_examples_and_their_ledger(workspace):
  assert _run(workspace) == 0
  card = _served_card(workspace)
  assert len(split_ledger.read(card.data.examples_uri)) == 30


def test_a_run_on_unchanged_data_does_nothing_and_says_so_in_seconds(workspace, capsys):
  capsys.readouterr()
  started = time.time()
  assert _run(workspace) == 0
  took = time.time() - started
  card = _served_card(workspace)
  printed = capsys.readouterr().out.strip().splitlines()
  assert printed == [f'No new data: version {card.version} in service was trained on this '
                     f'very data with this code and configuration (run {card.run_id}); '
                     'nothing retrained or pushed.']
  assert took < 60
  print(f'no-op run: {took:.1f} s')


def test_other_floors_are_another_run(workspace, capsys):
  """The no-op needs the same blessing rules: a stricter floor is judged anew."""
  capsys.readouterr()
  version = _served_card(workspace).version
  assert _run(workspace, '--min-accuracy', '1.0') == 0
  printed = capsys.readouterr().out
  assert 'No new data' not in printed and 'Blessed: no' in printed
  # Same examples: TFX reuses the first run's drift check, and the summary says so.
  assert ('Drift: not checked (no model with a model card is served yet). '
          "(cached: an earlier run's check of these examples)") in printed
  assert _served_card(workspace).version == version


def test_grown_data_retrains_warm_and_keeps_every_old_image_in_its_split(workspace, capsys):
  served = _served_card(workspace)
  before = executor_test.read_examples(served.data.examples_uri)
  synthetic_busi.write_dataset(workspace['data'], per_class=3, seed=11, first_number=51)

  served_dir = serving_dir.served_model_path(
      os.path.join(workspace['out'], 'serving_model', 'busi_classifier'))
  capsys.readouterr()
  assert _run(workspace, '--warm-start', '--warm-start-epochs', '1') == 0

  printed = capsys.readouterr().out
  assert f'Warm start: from served version {served.version} ({served_dir}).' in printed
  # Compared with the served model's data (whether 39 generated scans drift
  # from 30 is the comparators' call on tiny samples; components/drift_check_test.py
  # tests what drifts).
  drift = [line for line in printed.splitlines() if line.startswith('Drift: ')]
  assert len(drift) == 1 and f'data of served version {served.version} ' in drift[0], drift
  # The push loads the new version; TF Serving's `stable` label moves only once
  # it is confirmed loaded (docs/serving.md), so read the newest version's card.
  card = model_card.read_card(serving_dir.latest_model_path(
      os.path.join(workspace['out'], 'serving_model', 'busi_classifier')))
  assert card.version > served.version
  assert card.started_from == served_dir
  after = executor_test.read_examples(card.data.examples_uri)
  assert len(after) == 39
  assert {name: after[name][0] for name in before} == {
      name: split for name, (split, _) in before.items()}


def test_a_new_scanner_is_named_as_drift_and_stops_the_run_under_policy_stop(
    workspace, capsys):
  """A second site from another scanner: the stop names the site; nothing is pushed."""
  served = _served_card(workspace)
  scanner = synthetic_busi.write_manifest_dataset(
      workspace['new'] + '_scanner', patients_per_class=4, devices=('Scanner Z',))
  capsys.readouterr()
  assert local_runner.main(['--data-root', f'default={workspace["data"]}',
                            '--data-root', f'scanner_z={scanner}',
                            '--output-dir', workspace['out'], *_FAST,
                            '--drift-policy', 'stop']) != 0
  stopped = capsys.readouterr().err
  assert ('Stopped at data validation: The data drifted from the data of served '
          'version ') in stopped
  assert '  site scanner_z: new site, not in the data of served version ' in stopped
  assert _served_card(workspace).version == served.version
