"""The per-site rules over metric values: floors where a site is large enough, no
regression per site, n/a (never NaN) for what a site cannot measure."""

import json
import math

from blessing import rules
from blessing import site_gate
from contracts import names

_RULES = rules.BlessingRules(min_accuracy=0.8, min_malignant_recall=0.75,
                             regression_tolerance=0.02, min_site_malignant_examples=10)


def _site(sensitivity, malignant=20, accuracy=0.9, normal_recall=0.8):
  return {names.MALIGNANT_SENSITIVITY_METRIC: sensitivity,
          names.ACCURACY_METRIC: accuracy, site_gate.MALIGNANT_EXAMPLES: float(malignant),
          names.EXAMPLE_COUNT_METRIC: 60.0, 'normal_recall': normal_recall,
          names.MALIGNANT_SPECIFICITY_METRIC: 0.9}


def test_a_site_below_the_floor_fails_and_is_named():
  result = site_gate.judge({'busi': _site(0.9), 'bus_bra': _site(0.5)}, None, _RULES)
  assert not result.passed
  assert result.failed_sites == ('bus_bra',)
  (failure,) = result.failures
  assert failure.startswith("site 'bus_bra': malignant_sensitivity = 0.5000, below "
                            'the required 0.7500 (20 malignant test scans)')


def test_a_site_with_too_few_malignant_scans_is_reported_but_not_gated():
  result = site_gate.judge({'busi': _site(0.9), 'tiny': _site(0.0, malignant=9)}, None,
                           _RULES)
  assert result.passed
  tiny = next(site for site in result.sites if site.site == 'tiny')
  assert not tiny.gated and tiny.malignant_examples == 9
  assert site_gate.table_rows(result)[1][-1] == 'not gated (< 10 malignant)'


def test_a_site_without_a_class_gives_n_a_and_no_nan():
  without_normal = _site(0.9, normal_recall=float('nan'))
  without_normal[names.MALIGNANT_SPECIFICITY_METRIC] = float('nan')
  result = site_gate.judge({'bus_bra': without_normal}, None, _RULES)
  assert result.passed
  (site,) = result.sites
  assert site.metrics[names.MALIGNANT_SPECIFICITY_METRIC] is None
  text = result.to_json()
  assert 'NaN' not in text and json.loads(text)
  assert site_gate.SiteGateResult.from_json(text) == result
  specificity = site_gate.SITE_TABLE_METRICS.index(names.MALIGNANT_SPECIFICITY_METRIC)
  assert site_gate.table_rows(result)[0][1 + specificity] == 'n/a'


def test_a_site_without_malignant_scans_is_not_gated_and_has_no_nan():
  result = site_gate.judge(
      {'normals_only': _site(float('nan'), malignant=0)}, None, _RULES)
  assert result.passed and not result.sites[0].gated
  assert not any(isinstance(v, float) and math.isnan(v)
                 for v in result.sites[0].metrics.values())


def test_regression_at_one_site_against_the_served_model_fails():
  served = {'busi': _site(0.9), 'bus_bra': _site(0.9, accuracy=0.9)}
  candidate = {'busi': _site(0.95), 'bus_bra': _site(0.85, accuracy=0.85)}
  result = site_gate.judge(candidate, served, _RULES)
  assert result.failed_sites == ('bus_bra',)
  assert len(result.failures) == 2
  assert "site 'bus_bra': accuracy is -0.0500 against the served model" in result.failures[0]
  assert 'allowed: -0.0200 or better' in result.failures[0]
  assert "site 'bus_bra': malignant_sensitivity is -0.0500" in result.failures[1]


def test_within_the_tolerance_and_at_new_sites_the_gate_passes():
  served = {'busi': _site(0.9)}
  candidate = {'busi': _site(0.885), 'new_site': _site(0.8)}
  result = site_gate.judge(candidate, served, _RULES)
  assert result.passed
  assert result.sites[1].baseline == {}


def test_no_sites_changes_nothing():
  result = site_gate.judge({}, None, _RULES)
  assert result.passed and result.sites == () and result.failures == ()
