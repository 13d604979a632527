"""The malignant operating point: its rule, its bounds and its record."""

import dataclasses

import numpy as np
import pytest

from contracts import operating_point as op
from models import operating_point


def test_clopper_pearson_matches_the_closed_forms():
  # All n found: the one-sided lower bound is alpha^(1/n); none found: the
  # two-sided upper bound is 1 - (alpha/2)^(1/n).
  assert operating_point.lower_bound(20, 20) == pytest.approx(0.05 ** (1 / 20))
  assert operating_point.clopper_pearson(0, 10)[1] == pytest.approx(1 - 0.025 ** (1 / 10))
  lower, upper = operating_point.clopper_pearson(45, 50)
  assert lower < 0.9 < upper and lower == pytest.approx(0.7819, abs=1e-4)


def test_the_highest_threshold_whose_lower_bound_reaches_the_target():
  # 100 malignant scans scored 0.01..1.00 and 100 others scored below 0.5.
  malignant = np.arange(1, 101) / 100
  others = np.linspace(0.0, 0.49, 100)
  scores = np.concatenate([malignant, others])
  point = operating_point.choose(scores, np.arange(200) < 100, 0.90)
  found = point.sensitivity.successes
  # The bound reaches 0.90 first at 96 of 100 (95 of 100 gives 0.8977).
  assert found == 96 and point.target_bound_met
  assert point.sensitivity_lower_bound >= 0.90 > operating_point.lower_bound(95, 100)
  # Between the 96th malignant score (0.05) and the next lower score (0.0495).
  assert 0.0495 < point.threshold < 0.05
  assert point.specificity.successes == int((others < point.threshold).sum())
  assert point.sensitivity.lower < point.sensitivity.estimate < point.sensitivity.upper


def test_a_small_eval_split_falls_back_to_the_observed_sensitivity_and_says_so():
  malignant = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1])
  scores = np.concatenate([malignant, [0.05, 0.12, 0.35]])
  point = operating_point.choose(scores, np.arange(13) < 10, 0.90)
  assert point.sensitivity.successes == 9 and not point.target_bound_met
  # Halfway between the lowest referred malignant score and the next lower score.
  assert point.threshold == pytest.approx((0.15 + 0.12) / 2)
  assert point.specificity.successes == 2
  assert 'below the target' in point.summary_line()


def test_without_a_malignant_eval_scan_every_scan_is_referred():
  point = operating_point.choose(np.array([0.2, 0.1]), np.array([False, False]), 0.9)
  assert point.threshold == 0.0 and point.sensitivity_lower_bound is None
  assert point.sensitivity.estimate is None and point.specificity.successes == 0
  assert 'every scan is referred' in point.summary_line()


def test_the_record_round_trips_beside_the_saved_model(tmp_path):
  point = operating_point.choose(np.array([0.9, 0.6, 0.2]),
                                 np.array([True, True, False]), 0.9)
  assert operating_point.read(str(tmp_path)) is None
  operating_point.write(str(tmp_path), point)
  assert operating_point.read(str(tmp_path)) == point
  assert op.from_json(op.to_json(point)) == point


@pytest.mark.parametrize('target, fewest', [(0.90, 29), (0.95, 59), (0.80, 14)])
def test_the_fewest_malignant_scans_that_can_show_a_target(target, fewest):
  assert operating_point.fewest_malignant_to_show(target) == fewest
  assert operating_point.lower_bound(fewest, fewest) >= target
  assert operating_point.lower_bound(fewest - 1, fewest - 1) < target
  assert operating_point.fewest_malignant_to_show(1.0) is None


def test_the_observed_rule_refers_the_target_share_whatever_its_bound():
  # 31 malignant eval scans, as BUSI's: the bound reaches 0.90 only at 31 of 31.
  malignant = np.linspace(0.1, 0.9, 31)
  others = np.linspace(0.0, 0.3, 50)
  scores, is_malignant = np.concatenate([malignant, others]), np.arange(81) < 31
  bound = operating_point.choose(scores, is_malignant, 0.90)
  observed = operating_point.choose(scores, is_malignant, 0.90, with_bound=False)
  assert bound.sensitivity.successes == 31 and bound.target_bound_met
  assert observed.sensitivity.successes == 28 and not observed.target_bound_met
  assert observed.sensitivity_lower_bound == pytest.approx(operating_point.lower_bound(28, 31))
  assert observed.threshold > bound.threshold
  assert observed.specificity.successes > bound.specificity.successes


def test_rates_at_a_threshold_on_other_scans():
  sensitivity, specificity = operating_point.rates_at(
      0.5, np.array([0.9, 0.5, 0.4, 0.6, 0.1]), np.array([True, True, True, False, False]))
  assert (sensitivity.successes, sensitivity.total) == (2, 3)
  assert (specificity.successes, specificity.total) == (1, 2)


def test_a_site_table_refuses_to_replace_a_site_silently(tmp_path):
  point = dataclasses.replace(
      operating_point.choose(np.array([0.9, 0.6, 0.2]), np.array([True, True, False]), 0.9),
      site='bus_bra', split=op.SITE_EXPORT_SPLIT)
  assert operating_point.read_sites(str(tmp_path)) == {}
  assert operating_point.write_site(str(tmp_path), point) is None
  other = dataclasses.replace(point, threshold=0.1)
  with pytest.raises(operating_point.SiteRecordedError, match='--replace'):
    operating_point.write_site(str(tmp_path), other)
  assert operating_point.read_sites(str(tmp_path)) == {'bus_bra': point}
  assert operating_point.write_site(str(tmp_path), other, replace=True) == point
  assert operating_point.read_sites(str(tmp_path)) == {'bus_bra': other}
  assert 'labelled export split of site bus_bra' in other.summary_line()


def test_a_site_gets_its_own_point_only_with_the_cancers_to_show_the_target():
  rng = np.random.default_rng(0)
  # busi: 29 cancers (the fewest that can show 0.90); clinic: 28; each with 40 others.
  sites = np.array(['busi'] * 69 + ['clinic'] * 68)
  is_malignant = np.r_[np.arange(69) < 29, np.arange(68) < 28]
  scores = np.where(is_malignant, rng.uniform(0.3, 1.0, 137), rng.uniform(0.0, 0.6, 137))
  points = operating_point.choose_by_site(scores, is_malignant, sites, 0.90)
  assert set(points) == {'busi'}
  busi = sites == 'busi'
  assert points['busi'] == dataclasses.replace(
      operating_point.choose(scores[busi], is_malignant[busi], 0.90), site='busi')
  assert points['busi'].target_bound_met and points['busi'].sensitivity.total == 29
  assert 'eval split of site busi' in points['busi'].summary_line()
  # One site: the run's own point is the site's.
  assert operating_point.choose_by_site(scores[busi], is_malignant[busi], sites[busi],
                                        0.90) == {}
