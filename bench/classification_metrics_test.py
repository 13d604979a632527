"""The benchmark's metrics on cases whose answers are known by hand."""

import numpy as np

from bench import classification_metrics

_CLASSES = ['benign', 'malignant', 'normal']


def test_perfect_confident_predictions():
  labels = np.array([0, 1, 2, 1])
  report = classification_metrics.classification_report(
      labels, np.eye(3)[labels], _CLASSES, 'malignant')
  for key in ('accuracy', 'balanced_accuracy', 'macro_f1', 'macro_auc',
              'malignant_sensitivity', 'malignant_specificity',
              'benign_vs_malignant_auc'):
    assert report[key] == 1.0, key
  assert report['ece'] == 0.0


def test_malignant_rates_are_taken_at_the_argmax():
  labels = np.array([1, 1, 1, 1, 0, 0, 2, 2])
  # Two cancers called malignant, one benign and one normal scan called malignant.
  predicted = np.array([1, 1, 0, 2, 1, 0, 1, 2])
  probs = np.full((8, 3), 0.1)
  probs[np.arange(8), predicted] = 0.8
  report = classification_metrics.classification_report(labels, probs, _CLASSES, 'malignant')
  assert report['malignant_sensitivity'] == 0.5
  assert report['malignant_specificity'] == 0.5
  assert report['accuracy'] == 4 / 8
  assert np.isclose(report['balanced_accuracy'], (0.5 + 0.5 + 0.5) / 3)


def test_ece_is_the_gap_between_confidence_and_accuracy():
  labels = np.array([0, 0, 0, 0])
  # Always 0.9 confident, right half the time: calibration error 0.4.
  probs = np.array([[0.9, 0.05, 0.05]] * 2 + [[0.05, 0.9, 0.05]] * 2)
  assert np.isclose(classification_metrics.expected_calibration_error(labels, probs), 0.4)
