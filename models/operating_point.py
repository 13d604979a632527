"""Chooses the malignant operating point on the eval split, after calibration.

Argmax misses cancers that a clinic would rather biopsy: the decision is
instead "refer" when the calibrated malignant score reaches a threshold chosen
for a target sensitivity (`training.target_malignant_sensitivity`).

The rule, on the eval split's malignant scans: the highest threshold (the most
specific one) whose one-sided 95% Clopper-Pearson lower bound on sensitivity
reaches the target. A small eval split cannot show a high sensitivity with
confidence (with 20 malignant scans, all found, the bound is 0.861), so when no
threshold reaches the target with the bound, the threshold is the highest whose
observed sensitivity reaches it, and the record says the bound fell short.
Without any malignant eval scan nothing can be promised, and every scan is
referred (threshold 0).

The threshold lies halfway between the lowest malignant score it still refers
and the next lower eval score, so that the few-ulp differences between the
served graph and the scores it was chosen on cannot move an eval scan across it.
"""

import dataclasses
import os
from typing import Dict, Optional, Sequence, Tuple

from absl import logging
import numpy as np
from scipy import stats
import tensorflow as tf

from contracts import features
from contracts import operating_point as op
from contracts import serving


def malignant_index(class_names: Sequence[str]) -> int:
  """The label index whose score the served decision's threshold applies to."""
  if features.MALIGNANT_CLASS not in class_names:
    raise ValueError(f'The served decision refers on the {features.MALIGNANT_CLASS!r} '
                     f'score, which is not among the classes {", ".join(class_names)}')
  return list(class_names).index(features.MALIGNANT_CLASS)


def clopper_pearson(successes: int, total: int, confidence: float = op.CONFIDENCE):
  """The exact two-sided binomial interval (lower, upper) at `confidence`."""
  alpha = 1.0 - confidence
  lower = 0.0 if successes == 0 else stats.beta.ppf(alpha / 2, successes,
                                                    total - successes + 1)
  upper = 1.0 if successes == total else stats.beta.ppf(1 - alpha / 2, successes + 1,
                                                        total - successes)
  return float(lower), float(upper)


def lower_bound(successes: int, total: int, confidence: float = op.CONFIDENCE) -> float:
  """The one-sided Clopper-Pearson lower bound on a proportion at `confidence`."""
  if successes == 0:
    return 0.0
  return float(stats.beta.ppf(1.0 - confidence, successes, total - successes + 1))


def proportion(successes: int, total: int) -> op.Proportion:
  if total == 0:
    return op.Proportion(0, 0, None, None, None)
  lower, upper = clopper_pearson(successes, total)
  return op.Proportion(int(successes), int(total), successes / total, lower, upper)


def _referred_count(needed: int, total: int, target: float) -> int:
  """How many malignant eval scans (from the top) the threshold must refer."""
  for count in range(needed, total + 1):
    if lower_bound(count, total) >= target:
      return count
  return needed


def fewest_malignant_to_show(target: float, confidence: float = op.CONFIDENCE
                             ) -> Optional[int]:
  """The fewest malignant scans whose bound can reach `target`: all of them found.

  n of n found gives the one-sided bound (1 - confidence)^(1/n), so n must be
  at least log(1 - confidence) / log(target): 29 for 0.90 at 95%, 59 for 0.95.
  None for a target of 1, which no finite sample shows.
  """
  if target >= 1.0:
    return None
  n = max(1, int(np.ceil(np.log(1.0 - confidence) / np.log(target) - 1e-9)))
  return n if lower_bound(n, n, confidence) >= target else n + 1


def rates_at(threshold: float, malignant_scores: np.ndarray,
             is_malignant: np.ndarray) -> Tuple[op.Proportion, op.Proportion]:
  """(sensitivity, specificity) of referring at `threshold`, on any labelled scans."""
  scores = np.asarray(malignant_scores, np.float64)
  is_malignant = np.asarray(is_malignant, bool)
  return (proportion(int((scores[is_malignant] >= threshold).sum()), int(is_malignant.sum())),
          proportion(int((scores[~is_malignant] < threshold).sum()),
                     int((~is_malignant).sum())))


def choose(malignant_scores: np.ndarray, is_malignant: np.ndarray,
           target_sensitivity: float, with_bound: bool = True) -> op.OperatingPoint:
  """The operating point for calibrated malignant scores [N] of the eval split.

  `with_bound=False` is the observed-rate rule the bench compares it with: the
  highest threshold whose observed sensitivity reaches the target, whatever
  its bound.
  """
  scores = np.asarray(malignant_scores, np.float64)
  is_malignant = np.asarray(is_malignant, bool)
  positives = np.sort(scores[is_malignant])[::-1]
  total = len(positives)
  if total == 0:
    logging.warning('Operating point: the eval split holds no malignant scan, so no '
                    'sensitivity can be shown; every scan will be referred.')
    threshold, bound, met = 0.0, None, False
  else:
    # Observed sensitivity count/total reaches the target from this count on.
    needed = max(1, int(np.ceil(target_sensitivity * total - 1e-9)))
    count = (_referred_count(needed, total, target_sensitivity) if with_bound
             else needed)
    bound = lower_bound(count, total)
    met = bound >= target_sensitivity
    lowest_referred = positives[count - 1]
    below = scores[scores < lowest_referred]
    threshold = float((lowest_referred + (below.max() if below.size else 0.0)) / 2)
  sensitivity, specificity = rates_at(threshold, scores, is_malignant)
  return op.OperatingPoint(
      threshold=threshold, target_sensitivity=float(target_sensitivity),
      sensitivity=sensitivity, specificity=specificity,
      sensitivity_lower_bound=bound, target_bound_met=met)


def choose_by_site(malignant_scores: np.ndarray, is_malignant: np.ndarray,
                   sites: np.ndarray, target_sensitivity: float
                   ) -> Dict[str, op.OperatingPoint]:
  """Each site's own operating point, on its eval scans, where they can show the target.

  A site needs `fewest_malignant_to_show(target)` malignant eval scans (29 for
  0.90): with fewer, its threshold could promise nothing the bound supports,
  and the site keeps the run's. A run of one site has none: its own is the run's.
  """
  scores = np.asarray(malignant_scores, np.float64)
  is_malignant = np.asarray(is_malignant, bool)
  sites = np.asarray(sites)
  names = sorted(set(sites.tolist()))
  fewest = fewest_malignant_to_show(target_sensitivity)
  points = {}
  if len(names) < 2:
    return points
  for site in names:
    here = sites == site
    cancers = int(is_malignant[here].sum())
    if fewest is None or cancers < fewest:
      logging.info('Operating point: site %s has %d malignant eval scans, fewer than the '
                   '%s that can show sensitivity %.2f; it keeps the run\'s threshold.',
                   site, cancers, fewest, target_sensitivity)
      continue
    points[site] = dataclasses.replace(
        choose(scores[here], is_malignant[here], target_sensitivity), site=site)
  return points


def path_in(saved_model_dir: str) -> str:
  return os.path.join(saved_model_dir, serving.ASSETS_EXTRA, serving.OPERATING_POINT_FILE)


def write(saved_model_dir: str, point: op.OperatingPoint) -> str:
  """Writes the record beside the SavedModel, where the Pusher copies it from."""
  path = path_in(saved_model_dir)
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.gfile.GFile(path, 'w') as f:
    f.write(op.to_json(point))
  return path


def read(saved_model_dir: str) -> Optional[op.OperatingPoint]:
  """The record of an exported model; None for one exported without it."""
  path = path_in(saved_model_dir)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return op.from_json(f.read())


def sites_path_in(saved_model_dir: str) -> str:
  return os.path.join(saved_model_dir, serving.ASSETS_EXTRA, op.SITE_POINTS_FILE)


def read_sites(saved_model_dir: str) -> Dict[str, op.OperatingPoint]:
  """The version's per-site operating points, by site; empty when it has none."""
  path = sites_path_in(saved_model_dir)
  if not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path) as f:
    return op.sites_from_json(f.read())


class SiteRecordedError(ValueError):
  """The site already has an operating point, and replacing it was not asked for."""


def write_site(saved_model_dir: str, point: op.OperatingPoint,
               replace: bool = False) -> Optional[op.OperatingPoint]:
  """Adds `point` (for `point.site`) to the version's table; returns the one it replaced.

  The table is rewritten whole through a temporary file and a rename, so a
  client never reads half of it.
  """
  points = read_sites(saved_model_dir)
  old = points.get(point.site)
  if old is not None and not replace:
    raise SiteRecordedError(
        f'site {point.site!r} already has an operating point in this version '
        f'({old.summary_line()}); give --replace to replace it')
  points[point.site] = point
  path = sites_path_in(saved_model_dir)
  tf.io.gfile.makedirs(os.path.dirname(path))
  staged = path + '.tmp'
  with tf.io.gfile.GFile(staged, 'w') as f:
    f.write(op.sites_to_json(points))
  tf.io.gfile.rename(staged, path, overwrite=True)
  return old
