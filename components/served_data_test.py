"""The no-op decision: only the served model's very data, code, training and rules skip a run."""


import pytest

from components import served_data
from components.image_example_gen import executor_ledger_test
from serving import model_card

_TRAINING = {'model': {'name': 'seed_cnn'}, 'training': {'epochs': 2}}
_FLOORS = {'accuracy': 0.8, 'malignant_sensitivity': 0.75}


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
  """A served version whose card records data 'f', this code, _TRAINING and _FLOORS."""
  monkeypatch.setattr(model_card, 'code_fingerprint', lambda: 'this code')
  card = model_card.ModelCard(
      model_name='busi', version=7, pushed_at='2026-11-30T00:00:00+00:00', run_id='run-a',
      data=model_card.DataSummary(fingerprint='f', class_counts={}, split_counts={}),
      test_split='test', test_metrics={}, floors=_FLOORS, regression_tolerance=0.01,
      baseline_version='', code_fingerprint='this code', training_config=_TRAINING)
  folder = str(tmp_path / 'busi')
  executor_ledger_test.serve('', folder, card)
  return folder


def test_the_same_data_code_training_and_rules_are_a_no_op(model_dir):
  assert served_data.unchanged_since_served(model_dir, 'f', _TRAINING, _FLOORS, 0.01) == (
      'No new data: version 7 in service was trained on this very data with this code '
      'and configuration (run run-a); nothing retrained or pushed.')


@pytest.mark.parametrize('change', [
    {'fingerprint': 'g'},
    {'training_config': {**_TRAINING, 'training': {'epochs': 3}}},
    {'floors': {**_FLOORS, 'accuracy': 0.9}},
    {'regression_tolerance': 0.02},
])
def test_any_difference_runs(model_dir, change):
  args = {'fingerprint': 'f', 'training_config': _TRAINING, 'floors': _FLOORS,
          'regression_tolerance': 0.01, **change}
  assert served_data.unchanged_since_served(model_dir, **args) is None


def test_other_code_runs(model_dir, monkeypatch):
  monkeypatch.setattr(model_card, 'code_fingerprint', lambda: 'changed code')
  assert served_data.unchanged_since_served(model_dir, 'f', _TRAINING, _FLOORS, 0.01) is None


def test_nothing_served_runs(tmp_path):
  assert served_data.unchanged_since_served(str(tmp_path / 'none'), 'f', _TRAINING,
                                            _FLOORS, 0.01) is None
