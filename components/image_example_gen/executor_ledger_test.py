"""ImageExampleGen keeps the served model's images in their splits, found through its card."""

import os
import shutil

import pytest

from components import served_data
from components.image_example_gen import executor_test
from contracts import serving
from dataset import split_ledger
from serving import model_card
from tests.fixtures import synthetic_busi

# Runs ImageExampleGen's executor on the local Beam runner.
pytestmark = pytest.mark.integration


def serve(examples_uri: str, model_dir: str, card=None) -> None:
  """A served version (1, unless `card` says) whose card names `examples_uri`."""
  card = card or model_card.ModelCard(
      model_name='busi', version=1, pushed_at='2026-11-30T00:00:00+00:00', run_id='first',
      data=model_card.DataSummary(fingerprint='f', class_counts={}, split_counts={},
                                  examples_uri=examples_uri),
      test_split='test', test_metrics={}, floors={}, regression_tolerance=0.0,
      baseline_version='', code_fingerprint='c', training_config={})
  version = os.path.join(model_dir, str(card.version))
  model_card.write_card(version, card)
  with open(os.path.join(version, serving.SAVED_MODEL_FILE), 'wb') as f:
    f.write(b'')


def _grow(root: str, new_root: str, per_class: int) -> None:
  """Copies `per_class` new images per class into `root`, numbered after the old ones."""
  synthetic_busi.write_dataset(new_root, per_class=per_class, seed=7)
  for label in synthetic_busi.CLASSES:
    for n in range(1, per_class + 1):
      for suffix in ('', '_mask'):
        shutil.copy(os.path.join(new_root, label, f'{label} ({n}){suffix}.png'),
                    os.path.join(root, label, f'{label} ({100 + n}){suffix}.png'))


def _splits(out):
  return {name: split for name, (split, _) in executor_test.read_examples(out).items()}


def test_a_grown_folder_keeps_the_served_model_s_images_in_their_splits(tmp_path):
  root = synthetic_busi.write_dataset(str(tmp_path / 'data'), per_class=20, seed=3)
  first = executor_test.run_executor(root, str(tmp_path / 'first'))
  model_dir = str(tmp_path / 'serving' / 'busi')
  serve(first, model_dir)
  _grow(root, str(tmp_path / 'new'), per_class=4)

  second = executor_test.run_executor(root, str(tmp_path / 'second'),
                                      served_model_dir=model_dir)

  before, after = _splits(first), _splits(second)
  assert len(before) == 60 and len(after) == 72
  assert {name: after[name] for name in before} == before
  assert len(split_ledger.read(second)) == 72


def test_without_a_served_model_the_ledger_is_written_and_splits_are_planned_afresh(tmp_path):
  root = synthetic_busi.write_dataset(str(tmp_path / 'data'), per_class=10, seed=3)
  out = executor_test.run_executor(root, str(tmp_path / 'out'),
                                   served_model_dir=str(tmp_path / 'nothing served'))
  assert served_data.ledger(str(tmp_path / 'nothing served')) == {}
  assert set(split_ledger.read(out).values()) == {'train', 'eval', 'test'}
