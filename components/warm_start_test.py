"""Which served version a warm start starts from, and the one line when none fits."""

import os

import pytest

from components import warm_start
from components.image_example_gen import executor_ledger_test
from serving import model_card

_CLASSES = ['normal', 'benign', 'malignant']
_TRAINER_CONFIG = {'class_names': _CLASSES,
                   'model': {'name': 'lesion_net', 'image_size': 256, 'dropout': 0.3},
                   'training': {'warm_start': True}}


def _serve(model_dir: str, training_config) -> None:
  executor_ledger_test.serve('', model_dir, model_card.ModelCard(
      model_name='busi', version=3, pushed_at='2026-12-01T00:00:00+00:00', run_id='r',
      data=model_card.DataSummary(fingerprint='f', class_counts={}, split_counts={}),
      test_split='test', test_metrics={}, floors={}, regression_tolerance=0.0,
      baseline_version='', code_fingerprint='c', training_config=training_config))


def test_a_served_model_of_the_same_family_size_and_classes_is_the_start(tmp_path):
  model_dir = str(tmp_path / 'busi')
  # Another dropout or schedule does not change the shapes of the weights.
  _serve(model_dir, {**_TRAINER_CONFIG, 'model': {**_TRAINER_CONFIG['model'], 'dropout': 0.1}})
  start = warm_start.choose(model_dir, _TRAINER_CONFIG)
  assert start.version_dir == os.path.join(model_dir, '3')
  assert start.line == f'Warm start: from served version 3 ({start.version_dir}).'


@pytest.mark.parametrize('served, why', [
    ({**_TRAINER_CONFIG, 'model': {'name': 'busi_net', 'image_size': 224}},
     'the served version 3 is busi_net at 224 px for normal, benign, malignant, this run '
     'trains lesion_net at 256 px for normal, benign, malignant'),
    ({**_TRAINER_CONFIG, 'model': {'name': 'lesion_net', 'image_size': 192}},
     'the served version 3 is lesion_net at 192 px for normal, benign, malignant, this '
     'run trains lesion_net at 256 px for normal, benign, malignant'),
    ({**_TRAINER_CONFIG, 'class_names': ['benign', 'malignant']},
     'the served version 3 is lesion_net at 256 px for benign, malignant, this run '
     'trains lesion_net at 256 px for normal, benign, malignant'),
    # A card written before it recorded the training configuration.
    ({}, 'the served version 3 is an unknown family at ? px for unknown classes, this '
         'run trains lesion_net at 256 px for normal, benign, malignant'),
])
def test_another_family_size_or_class_list_trains_from_scratch(tmp_path, served, why):
  model_dir = str(tmp_path / 'busi')
  _serve(model_dir, served)
  assert warm_start.choose(model_dir, _TRAINER_CONFIG) == warm_start.WarmStart(
      '', f"Warm start: not possible, {why}; trained from the family's initial weights.")


def test_nothing_served_trains_from_scratch(tmp_path):
  assert warm_start.choose(str(tmp_path / 'none'), _TRAINER_CONFIG) == warm_start.WarmStart(
      '', "Warm start: not possible, no model is served yet; trained from the family's "
          'initial weights.')


def test_a_version_without_a_card_trains_from_scratch(tmp_path):
  version = tmp_path / 'busi' / '5'
  version.mkdir(parents=True)
  (version / 'saved_model.pb').write_bytes(b'')
  start = warm_start.choose(str(tmp_path / 'busi'), _TRAINER_CONFIG)
  assert start.version_dir == ''
  assert 'has no model card to say what it is' in start.line
