"""The model-against-BI-RADS figures, on values small enough to check by hand."""

import numpy as np
import pytest

from blessing import radiologist_comparison

# Five benign and four malignant scans; the model and the radiologist on each.
_MALIGNANT = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1], bool)
_SCORES = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.25, 0.45, 0.6, 0.9])
_BIRADS = np.array([2, 3, 3, 4, 4, 3, 4, 5, 5], float)


def test_birads_operating_points_and_the_model_at_the_biopsy_specificity():
  result = radiologist_comparison.compare(_MALIGNANT, _SCORES, _BIRADS)
  assert (result.scans, result.malignant) == (9, 4)
  # BI-RADS >= 4 refers 3 of the 4 cancers and 2 of the 5 benign scans.
  biopsy = result.point(4)
  assert (biopsy.sensitivity.successes, biopsy.sensitivity.total) == (3, 4)
  assert biopsy.specificity.estimate == pytest.approx(3 / 5)
  assert result.point(3).sensitivity.estimate == 1.0
  assert result.point(3).specificity.estimate == pytest.approx(1 / 5)
  assert (result.point(5).sensitivity.estimate, result.point(5).specificity.estimate) == (
      0.5, 1.0)
  # Keeping 3 benign scans unreferred, as BI-RADS >= 4 does: threshold 0.3 (the
  # third lowest benign score); above it are 0.45, 0.6, 0.9 of the cancers.
  assert result.model_threshold_at_biopsy_specificity == 0.3
  assert result.model_sensitivity_at_biopsy_specificity.estimate == 0.75
  assert result.model_specificity_at_biopsy_specificity.estimate == pytest.approx(3 / 5)
  # Model AUC: of the 20 benign-malignant pairs the cancer scores higher in 16
  # (0.25 beats 0.1, 0.2; 0.45 beats four; 0.6 and 0.9 beat all five).
  assert result.model_auc == pytest.approx(16 / 20)
  # BI-RADS AUC with ties counting half: 3 beats 1 and ties 2 (2); 4 beats 3
  # and ties 2 (4); each 5 beats all five (10): 16 of 20.
  assert result.birads_auc == pytest.approx(16 / 20)


def test_scans_without_a_reading_are_left_out():
  birads = np.r_[_BIRADS, np.nan, np.nan]
  result = radiologist_comparison.compare(np.r_[_MALIGNANT, True, False],
                                          np.r_[_SCORES, 0.0, 1.0], birads)
  assert result.scans == 9 and result.model_auc == pytest.approx(16 / 20)


def test_no_comparison_without_both_classes_read():
  assert radiologist_comparison.compare(
      _MALIGNANT, _SCORES, np.where(_MALIGNANT, _BIRADS, np.nan)) is None


def test_birads_4_referring_every_benign_scan_refers_every_scan():
  result = radiologist_comparison.compare(
      np.array([0, 1], bool), np.array([0.9, 0.1]), np.array([4.0, 5.0]))
  assert result.model_threshold_at_biopsy_specificity is None
  assert result.model_sensitivity_at_biopsy_specificity.estimate == 1.0
