"""The "not sure" flag: scans whose decision the model should not be trusted with.

A flagged scan is to be read by a radiologist whatever its decision. The
signal is how little the model believes its own likeliest class, 1 - the
largest calibrated score (Hendrycks & Gimpel, 2017): of the candidates
bench/not_sure.py compared on a trained model (an energy score, a Mahalanobis
distance in the penultimate layer, disagreement between the whole-image and
lesion views, the distance to the malignant threshold), it separated wrong
decisions from right ones best on the eval split (bench/README.md). It needs
nothing but the served scores, so it is the same for every model family.

The cut-off is set on the eval split's calibrated scores, as the operating
point is: the least sure `FLAG_FRACTION` of the eval scans are flagged.
"""

import numpy as np
import tensorflow as tf

# The share of the eval split the flag fires on.
FLAG_FRACTION = 0.20


def unsureness(scores: np.ndarray) -> np.ndarray:
  """The signal per scan, for calibrated scores [N, classes]: higher is less sure."""
  return 1.0 - np.asarray(scores, np.float64).max(axis=1)


def choose_cutoff(eval_scores: np.ndarray, fraction: float = FLAG_FRACTION) -> float:
  """The signal at and above which a scan is flagged: flags `fraction` of the eval split."""
  return cutoff_flagging(unsureness(eval_scores), fraction)


def cutoff_flagging(signal: np.ndarray, fraction: float) -> float:
  """The cut-off that flags `fraction` (rounded up) of `signal` [N], higher = less sure.

  It lies halfway between the least sure value left unflagged and the surest
  one flagged, so the served graph's float32 arithmetic cannot move an eval
  scan across it. Without values nothing can be set, and nothing is flagged;
  a fraction of 1 flags everything.
  """
  signal = np.sort(np.asarray(signal, np.float64))[::-1]
  flagged = int(np.ceil(fraction * signal.size - 1e-9))
  if flagged == 0:
    return float('inf')
  if flagged == signal.size:
    return float('-inf')
  return float((signal[flagged - 1] + signal[flagged]) / 2)


def flag(scores: tf.Tensor, cutoff: float) -> tf.Tensor:
  """bool [N]: the scans whose signal reaches `cutoff`, for served scores [N, classes]."""
  return 1.0 - tf.reduce_max(scores, axis=1) >= cutoff
