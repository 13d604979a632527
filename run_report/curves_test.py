"""The report's curves against cases whose answers are known by hand."""

import numpy as np
import pytest

from run_report import curves


def test_roc_of_a_perfect_ranking_has_area_one_and_a_reversed_one_zero():
  scores = np.array([0.9, 0.8, 0.3, 0.1])
  positive = np.array([True, True, False, False])
  assert curves.roc(scores, positive).area == 1.0
  assert curves.roc(-scores, positive).area == 0.0


def test_roc_area_counts_ties_as_half():
  curve = curves.roc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([1, 0, 1, 0]))
  assert curve.area == pytest.approx(0.5)
  np.testing.assert_allclose(curve.x, [0.0, 1.0])


def test_roc_area_matches_the_pairwise_definition():
  rng = np.random.default_rng(0)
  scores, positive = rng.random(200), rng.random(200) < 0.3
  pairs = scores[positive][:, None] - scores[~positive][None, :]
  expected = np.mean(pairs > 0) + 0.5 * np.mean(pairs == 0)
  assert curves.roc(scores, positive).area == pytest.approx(expected)


def test_roc_with_one_class_only_has_no_area():
  assert np.isnan(curves.roc(np.array([0.2, 0.7]), np.array([True, True])).area)


def test_average_precision_by_hand():
  # Ranked: pos, neg, pos -> precision 1 at recall 1/2, 2/3 at recall 1.
  curve = curves.precision_recall(np.array([0.9, 0.5, 0.2]), np.array([1, 0, 1]))
  assert curve.area == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
  np.testing.assert_allclose(curve.x, [0.0, 0.5, 0.5, 1.0])


def test_reliability_bins_and_expected_calibration_error():
  probabilities = np.array([[0.95, 0.05], [0.95, 0.05], [0.65, 0.35], [0.35, 0.65]])
  labels = np.array([0, 1, 0, 0])
  bins = curves.reliability(probabilities, labels, bins=10)
  np.testing.assert_allclose(bins.confidence, [0.65, 0.95])
  np.testing.assert_allclose(bins.accuracy, [0.5, 0.5])
  np.testing.assert_array_equal(bins.counts, [2, 2])
  assert bins.expected_calibration_error == pytest.approx((2 * 0.15 + 2 * 0.45) / 4)


def test_confusion_matrix_counts_true_against_predicted():
  np.testing.assert_array_equal(
      curves.confusion_matrix(np.array([0, 1, 1, 2, 2, 0]), np.array([0, 0, 1, 2, 2, 2]), 3),
      [[1, 0, 1], [1, 1, 0], [0, 0, 2]])
