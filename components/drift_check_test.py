"""DataDriftCheck's comparison on real TFRecords: a brighter second export drifts."""

import glob
import os

import apache_beam as beam
import numpy as np
from PIL import Image
import pytest
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.utils import io_utils

from components import drift_check
from components.image_example_gen import executor_ledger_test
from components.image_example_gen import executor_test
from contracts import configs
from tests.fixtures import synthetic_busi

# Each test runs the DataDriftCheck executor on statistics of real Beam runs.
pytestmark = pytest.mark.integration

_SCHEMA = io_utils.parse_pbtxt_file(
    os.path.join(configs.SCHEMA_DIR, 'schema.pbtxt'), schema_pb2.Schema())


def _brighten(root: str, by: int) -> str:
  """Every scan (not its masks) `by` grey levels brighter, as another gain would."""
  for path in glob.glob(os.path.join(root, '*', '*.png')):
    if '_mask' not in path:
      grey = np.asarray(Image.open(path), dtype=np.int16)
      Image.fromarray(np.clip(grey + by, 0, 255).astype(np.uint8)).save(path)
  return root


@pytest.fixture(scope='module')
def served(tmp_path_factory):
  """A served version trained on a first export of 20 scans per class."""
  root = tmp_path_factory.mktemp('drift')
  first = executor_test.run_executor(
      synthetic_busi.write_dataset(str(root / 'first'), per_class=20, seed=1),
      str(root / 'first_examples'))
  model_dir = str(root / 'serving' / 'busi')
  executor_ledger_test.serve(first, model_dir)
  return {'root': root, 'examples': first, 'model_dir': model_dir}


def _check(served, examples, policy, name):
  return drift_check.check(examples, _SCHEMA, served['model_dir'], policy,
                           str(served['root'] / name), beam.Pipeline())


def test_the_same_data_has_no_drift_and_every_drift_feature_is_compared(served):
  result = _check(served, served['examples'], 'warn', 'same')
  assert {f.feature for f in result.features} == {
      'label', 'site', 'device', 'intensity_mean', 'intensity_spread', 'dark_fraction'}
  assert result.drifted == [] and result.served_version == '1'
  assert result.summary_lines() == [
      'Drift: none against the data of served version 1 (6 features compared).']
  assert drift_check.read(str(served['root'] / 'same')) == result


@pytest.fixture(scope='module')
def brighter(served):
  """A second export, every scan 70 grey levels brighter."""
  return executor_test.run_executor(
      _brighten(synthetic_busi.write_dataset(str(served['root'] / 'second'),
                                             per_class=20, seed=2), 70),
      str(served['root'] / 'second_examples'))


def test_a_brighter_export_drifts_in_intensity_and_shows_both_distributions(served, brighter):
  result = _check(served, brighter, 'warn', 'brighter')

  drifted = {f.feature: f for f in result.drifted}
  assert 'intensity_mean' in drifted and 'label' not in drifted
  mean = drifted['intensity_mean']
  assert mean.comparator == 'Jensen-Shannon' and mean.value > mean.threshold == 0.2
  assert mean.new['mean'] > mean.served['mean'] + 50
  lines = result.summary_lines()
  assert lines[0].startswith(f'Drift: {len(drifted)} of 6 features drifted from the data '
                             'of served version 1 (policy warn: run went on):')
  assert any(line.startswith('  - intensity_mean: Jensen-Shannon ') for line in lines)
  drift_check.enforce(result)


def test_policy_stop_raises_with_one_line_per_drifted_feature(served, brighter):
  result = _check(served, brighter, 'stop', 'brighter_stop')
  with pytest.raises(drift_check.DataDriftError) as stopped:
    drift_check.enforce(result)
  message = str(stopped.value)
  assert message.startswith('The data drifted from the data of served version 1 (policy '
                            'stop); nothing is trained or pushed:\n  ')
  assert len(message.splitlines()) == 1 + len(result.drifted)
  assert 'intensity_mean: Jensen-Shannon 1.000 > 0.2' in message
  drift_check.enforce(_check(served, served['examples'], 'stop', 'same_stop'))


def test_nothing_served_is_said_and_nothing_compared(served):
  result = drift_check.check(served['examples'], _SCHEMA, str(served['root'] / 'none'),
                             'stop', str(served['root'] / 'unserved'), beam.Pipeline())
  assert result.features == [] and result.summary_lines() == [
      'Drift: not checked (no model with a model card is served yet).']


def test_per_site_a_new_site_and_a_known_site_that_moved_are_named(served):
  """Two served sites; then one of them brighter, the other as it was, and a third."""
  root = served['root'] / 'sites'
  busi = synthetic_busi.write_dataset(str(root / 'busi'), per_class=12, seed=3)
  bra = synthetic_busi.write_dataset(str(root / 'bra'), per_class=12, seed=4)
  before = (configs.Site('busi', busi), configs.Site('bra', bra))
  served_examples = executor_test.run_executor(
      f'busi={busi};bra={bra}', str(root / 'served_examples'), sites=before)
  model_dir = str(root / 'serving' / 'busi')
  executor_ledger_test.serve(served_examples, model_dir)
  brighter_busi = _brighten(synthetic_busi.write_dataset(
      str(root / 'busi_later'), per_class=12, seed=3), 70)
  other = synthetic_busi.write_dataset(str(root / 'other'), per_class=4, seed=5)
  after = (configs.Site('busi', brighter_busi), configs.Site('bra', bra),
           configs.Site('other', other))
  current = executor_test.run_executor(
      f'busi={brighter_busi};bra={bra};other={other}', str(root / 'current_examples'),
      sites=after)

  result = drift_check.check(current, _SCHEMA, model_dir, 'stop', str(root / 'drift'),
                             beam.Pipeline())

  assert {f.site for f in result.features} == {'', 'busi', 'bra'}
  assert {f.feature for f in result.features if f.site == 'bra'} == {
      'label', 'device', 'intensity_mean', 'intensity_spread', 'dark_fraction'}
  at = {(f.site, f.feature): f for f in result.features}
  assert at[('busi', 'intensity_mean')].drifted
  assert not at[('bra', 'intensity_mean')].drifted
  assert at[('busi', 'intensity_mean')].served_histogram
  assert abs(sum(share for _, _, share in at[('busi', 'intensity_mean')].new_histogram)
             - 1) < 1e-6
  assert list(result.new_sites) == ['other'] and result.new_sites['other'] > 0
  lines = result.summary_lines()
  print('\n'.join(lines))
  assert lines[0].startswith('Drift: 1 new site, ') and 'overall and at each of 2 sites' in lines[0]
  assert lines[1] == (f'  - site other: new site, not in the data of served version 1 '
                      f'({result.new_sites["other"]} images in the train split)')
  assert any(line.startswith('  - site busi: intensity_mean: Jensen-Shannon ')
             for line in lines)
  assert not any(line.startswith('  - site bra: intensity') for line in lines)
  with pytest.raises(drift_check.DataDriftError, match='site other: new site'):
    drift_check.enforce(result)
  assert drift_check.read(str(root / 'drift')) == result
