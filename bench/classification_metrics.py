"""The quality table's metrics, from labels and predicted class probabilities.

Sensitivity and specificity are taken at the argmax, the decision a client
receives, like the pipeline's blessing (blessing/clinical_metrics.py).
"""

from typing import Dict, Sequence

import numpy as np
from sklearn import metrics

ECE_BINS = 10


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray,
                               bins: int = ECE_BINS) -> float:
  """Top-label ECE: |accuracy - confidence| averaged over equal-width bins."""
  confidence = probs.max(axis=1)
  correct = probs.argmax(axis=1) == labels
  edges = np.linspace(0.0, 1.0, bins + 1)
  which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
  error = 0.0
  for b in range(bins):
    in_bin = which == b
    if in_bin.any():
      error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
  return float(error)


def _auc(positive: np.ndarray, scores: np.ndarray) -> float:
  if positive.all() or not positive.any():
    return float('nan')
  return float(metrics.roc_auc_score(positive, scores))


def classification_report(labels: np.ndarray, probs: np.ndarray,
                          class_names: Sequence[str],
                          malignant: str, benign: str = 'benign') -> Dict[str, float]:
  """The benchmark's metrics for one model on one test set."""
  predicted = probs.argmax(axis=1)
  m, b = class_names.index(malignant), class_names.index(benign)
  is_malignant, called_malignant = labels == m, predicted == m
  pair = (labels == m) | (labels == b)
  # Benign vs malignant: how well p(malignant | benign or malignant) ranks the
  # scans a clinician must tell apart; normal scans are left out.
  pair_scores = probs[pair, m] / np.maximum(probs[pair, m] + probs[pair, b], 1e-12)
  aucs = [_auc(labels == c, probs[:, c]) for c in range(len(class_names))]
  return {
      'accuracy': float((predicted == labels).mean()),
      'balanced_accuracy': float(metrics.balanced_accuracy_score(labels, predicted)),
      'macro_f1': float(metrics.f1_score(labels, predicted, average='macro',
                                         labels=list(range(len(class_names))),
                                         zero_division=0)),
      'macro_auc': float(np.nanmean(aucs)),
      'malignant_sensitivity': float(called_malignant[is_malignant].mean()),
      'malignant_specificity': float((~called_malignant[~is_malignant]).mean()),
      'benign_vs_malignant_auc': _auc(labels[pair] == m, pair_scores),
      'ece': expected_calibration_error(labels, probs),
  }
