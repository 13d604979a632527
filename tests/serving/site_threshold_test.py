"""`site_threshold` sets a site's threshold from its labelled scans; `predict --site` decides at it."""

import json
import os

import numpy as np
import pytest
from tfx.utils import io_utils

from contracts import features
from contracts import names
from contracts import operating_point as op
from models import operating_point
from serving import model_card
from tests.fixtures import synthetic_busi
from tests.serving import model_card_test

import predict
import site_threshold


@pytest.fixture()
def version_dir(exported, tmp_path):
  base = tmp_path / 'serving' / names.MODEL_NAME
  io_utils.copy_dir(exported.saved_model_dir, str(base / '17'))
  return str(base / '17')


@pytest.fixture(scope='module')
def site_root(tmp_path_factory):
  return synthetic_busi.write_dataset(str(tmp_path_factory.mktemp('newsite')), per_class=3)


def _run(capsys, *argv):
  code = site_threshold.main(list(argv))
  out, err = capsys.readouterr()
  return code, out, err


def test_a_site_gets_the_trainer_rule_on_the_served_scores_and_keeps_it(
    capsys, version_dir, site_root):
  base = os.path.dirname(version_dir)
  model_card.write_card(version_dir, model_card_test._card(operating_point.read(version_dir)))
  code, out, err = _run(capsys, '--site', 'clinic', '--data-root', f'clinic={site_root}',
                        '--model-dir', base, '--target-sensitivity', '0.5')
  assert code == 0, err
  point = operating_point.read_sites(version_dir)['clinic']
  assert out.startswith(operating_point.sites_path_in(version_dir))
  scans = site_threshold.labelled_scans(site_threshold._site(site_threshold._parse_args(
      ['--site', 'clinic', '--data-root', f'clinic={site_root}'])), features.CLASS_NAMES)
  malignant = features.CLASS_NAMES.index(features.MALIGNANT_CLASS)
  scores = site_threshold.malignant_scores(version_dir, [path for path, _ in scans])
  expected = operating_point.choose(scores, np.array([l == malignant for _, l in scans]), 0.5)
  assert point.threshold == expected.threshold and point.sensitivity.total == 3
  assert (point.site, point.split) == ('clinic', op.SITE_EXPORT_SPLIT)
  # Three cancers cannot show 0.5 with the bound (it needs 5), and the program says so.
  assert not point.target_bound_met and 'at least 5 malignant scans' in err

  code, _, err = _run(capsys, '--site', 'clinic', '--data-root', f'clinic={site_root}',
                      '--model-dir', version_dir)
  assert code == 2 and err.count('\n') == 1
  assert 'already has a threshold' in err and '--replace' in err
  assert operating_point.read_sites(version_dir)['clinic'] == point

  code, out, _ = _run(capsys, '--site', 'clinic', '--data-root', f'clinic={site_root}',
                      '--model-dir', version_dir, '--replace')
  assert code == 0 and 'replaced: ' in out
  # The card, written at the push, lists the site's threshold as now recorded.
  assert model_card.read_card(version_dir).site_thresholds == {
      'clinic': operating_point.read_sites(version_dir)['clinic'].threshold}
  # The served model's own target (the Trainer's record) when none is given.
  assert operating_point.read_sites(version_dir)['clinic'].target_sensitivity == (
      operating_point.read(version_dir).target_sensitivity)


def test_predict_decides_at_the_site_threshold(capsys, version_dir, site_root):
  point = op.OperatingPoint(
      threshold=0.0, target_sensitivity=0.9,
      sensitivity=operating_point.proportion(3, 3),
      specificity=operating_point.proportion(0, 6), sensitivity_lower_bound=0.37,
      target_bound_met=False, split=op.SITE_EXPORT_SPLIT, site='clinic')
  operating_point.write_site(version_dir, point)
  image = os.path.join(site_root, 'benign', 'benign (1).png')
  assert predict.main([image, '--model-dir', version_dir, '--json', '--site', 'clinic']) == 0
  (result,) = json.loads(capsys.readouterr().out)
  # At threshold 0 every scan is referred, whatever the model's own threshold.
  assert (result['decision'], result['label'], result['malignant_threshold']) == (
      'refer', 'malignant', 0.0)
  assert predict.main([image, '--model-dir', version_dir, '--site', 'other']) == 2
  err = capsys.readouterr().err
  assert 'no threshold for it (sites: clinic)' in err


@pytest.mark.parametrize('argv, message', [
    (['--site', 'clinic', '--data-root', 'other=/x'], '--site clinic: no --data-root names it'),
    (['--site', 'clinic', '--data-root', 'clinic=/no/such/folder'], 'site clinic: '),
    (['--site', 'clinic', '--data-root', 'Clinic=/x'], 'site names are lower-case'),
])
def test_bad_input_is_one_line(capsys, version_dir, argv, message):
  code, _, err = _run(capsys, *argv, '--model-dir', version_dir)
  assert code == 2 and err.count('\n') == 1 and message in err


def test_the_client_decision_matches_the_signatures_rule():
  scores = {'benign': 0.3, 'malignant': 0.4, 'normal': 0.3}
  assert op.decision_at(scores, 0.4) == ('refer', 'malignant')
  assert op.decision_at(scores, 0.5) == ('benign', 'benign')   # a tie: the earlier class
  assert op.decision_at({'benign': 0.1, 'malignant': 0.3, 'normal': 0.6}, 0.2) == (
      'refer', 'malignant')
