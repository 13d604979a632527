"""Classification curves from scores, in numpy.

The report draws them from the served model's own outputs on the test split,
so each curve describes exactly what a client would receive.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Curve:
  x: np.ndarray
  y: np.ndarray
  area: float


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray,
                     num_classes: int) -> np.ndarray:
  """counts[true, predicted]."""
  counts = np.zeros((num_classes, num_classes), dtype=np.int64)
  np.add.at(counts, (labels, predictions), 1)
  return counts


def _ranked_outcomes(scores: np.ndarray, positive: np.ndarray):
  """Cumulative true and false positives at each distinct score, highest first."""
  order = np.argsort(-scores, kind='stable')
  scores, positive = scores[order], positive[order].astype(np.float64)
  last_of_each_score = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
  true_positives = np.cumsum(positive)[last_of_each_score]
  false_positives = np.cumsum(1 - positive)[last_of_each_score]
  return true_positives, false_positives


def roc(scores: np.ndarray, positive: np.ndarray) -> Curve:
  """False positive rate (x) against true positive rate (y); NaN area if one class."""
  positives, negatives = positive.sum(), (~positive.astype(bool)).sum()
  if not positives or not negatives:
    return Curve(np.array([0.0, 1.0]), np.array([0.0, 1.0]), float('nan'))
  tp, fp = _ranked_outcomes(scores, positive)
  fpr = np.r_[0.0, fp / negatives]
  tpr = np.r_[0.0, tp / positives]
  return Curve(fpr, tpr, float(np.trapz(tpr, fpr)))


def precision_recall(scores: np.ndarray, positive: np.ndarray) -> Curve:
  """Recall (x) against precision (y); the area is the average precision."""
  positives = positive.sum()
  if not positives:
    return Curve(np.array([0.0, 1.0]), np.array([1.0, 0.0]), float('nan'))
  tp, fp = _ranked_outcomes(scores, positive)
  recall = tp / positives
  precision = tp / (tp + fp)
  average_precision = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
  return Curve(np.r_[0.0, recall], np.r_[1.0, precision], average_precision)


@dataclasses.dataclass
class Reliability:
  """Per confidence bin: mean confidence, accuracy and size; plus the ECE."""
  confidence: np.ndarray
  accuracy: np.ndarray
  counts: np.ndarray
  expected_calibration_error: float


def reliability(probabilities: np.ndarray, labels: np.ndarray,
                bins: int = 10) -> Reliability:
  """Bins the top-class confidence; empty bins are dropped."""
  confidence = probabilities.max(axis=1)
  correct = probabilities.argmax(axis=1) == labels
  index = np.minimum((confidence * bins).astype(int), bins - 1)
  counts = np.bincount(index, minlength=bins)
  kept = counts > 0
  mean_confidence = np.bincount(index, confidence, bins)[kept] / counts[kept]
  accuracy = np.bincount(index, correct.astype(float), bins)[kept] / counts[kept]
  ece = float(np.sum(counts[kept] * np.abs(accuracy - mean_confidence)) / labels.size)
  return Reliability(mean_confidence, accuracy, counts[kept], ece)

