"""ImageExampleGen on a site of dated exports: a second export keeps the first's splits."""

import os
import shutil

import pytest

from components.image_example_gen import driver
from components.image_example_gen import executor_ledger_test
from components.image_example_gen import executor_test
from contracts import configs
from dataset import data_audit
from serving import model_card
from tests.fixtures import synthetic_busi

# Runs ImageExampleGen's executor on the local Beam runner.
pytestmark = pytest.mark.integration


def _splits(out):
  return {name: split for name, (split, _) in executor_test.read_examples(out).items()}


def test_a_second_export_keeps_old_splits_reads_a_resent_image_once_and_is_named(tmp_path):
  root = tmp_path / 'site'
  november = synthetic_busi.write_dataset(str(root / 'exports' / '2026-11'), per_class=8)
  site = configs.Site('busi', str(root))
  first = executor_test.run_executor(str(root), str(tmp_path / 'first'), sites=(site,))
  model_dir = str(tmp_path / 'serving' / 'busi')
  executor_ledger_test.serve(first, model_dir)
  fingerprint = driver.sites_fingerprint((site,))

  december = synthetic_busi.write_dataset(str(root / 'exports' / '2026-12'), per_class=3,
                                          seed=5)
  for suffix in ('', '_mask'):  # November's first benign scan, sent again
    shutil.copy(os.path.join(november, 'benign', f'benign (1){suffix}.png'),
                os.path.join(december, 'benign', f'resent{suffix}.png'))
  assert driver.sites_fingerprint((site,)) != fingerprint
  second = executor_test.run_executor(str(root), str(tmp_path / 'second'), sites=(site,),
                                      served_model_dir=model_dir)

  before, after = _splits(first), _splits(second)
  assert len(before) == 24 and len(after) == 24 + 9
  assert {name: after[name] for name in before} == before
  assert 'busi/exports/2026-12/benign/resent.png' not in after
  audit = data_audit.read(second)
  assert audit.export_counts == {'busi/2026-11': 24, 'busi/2026-12': 9}
  assert [(i.file, i.reason) for i in audit.ignored] == [(
      'busi/exports/2026-12/benign/resent.png',
      'same image as busi/exports/2026-11/benign/benign (1).png of an earlier export; '
      'read once')]
  assert 'Exports: busi/2026-11 24, busi/2026-12 9.' in data_audit.summary_line(audit)
  card_data = model_card.data_summary(second, fingerprint)
  assert card_data.exports == {'busi/2026-11': 24, 'busi/2026-12': 9}
  assert 'Exports: busi/2026-11 (24 images), busi/2026-12 (9 images).' in (
      model_card.to_markdown(model_card.from_json(model_card.to_json(
          _card(card_data)))))

  newest = executor_test.run_executor(str(root), str(tmp_path / 'newest'), sites=(site,),
                                      served_model_dir=model_dir, newest_exports=1)
  assert data_audit.read(newest).export_counts == {'busi/2026-12': 10}


def _card(data):
  return model_card.ModelCard(
      model_name='busi', version=2, pushed_at='2026-12-31T00:00:00+00:00', run_id='second',
      data=data, test_split='test', test_metrics={}, floors={}, regression_tolerance=0.0,
      baseline_version='1', code_fingerprint='c', training_config={})
