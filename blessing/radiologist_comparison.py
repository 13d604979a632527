"""The model against the radiologist on the same scans: BI-RADS as the clinical baseline.

Where a site's manifest gives each scan's BI-RADS category (BUS-BRA's
`bus_data.csv` does), what a radiologist decided is known for every scan the
model is tested on. BI-RADS is an ordinal malignancy score, so it has an AUC
and three operating points that matter clinically: >= 3 (short follow-up or
more), >= 4 (biopsy recommended) and 5 (highly suggestive). The comparison a
clinician asks for is at the radiologist's own biopsy rate: referring no more
benign scans than BI-RADS >= 4 does, how many cancers does the model find?

Only benign and malignant scans with a reading are compared: BI-RADS grades a
lesion, and a normal scan has none to grade. The run report and the bench
both compute their figures here.
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np
from scipy import stats

from contracts import operating_point as op

# The categories at or above which a scan counts as referred, in the order shown.
BIRADS_THRESHOLDS: Tuple[int, ...] = (3, 4, 5)
# BI-RADS 4: "suspicious, biopsy should be considered"; the point the model is matched at.
BIOPSY_CATEGORY = 4


@dataclasses.dataclass(frozen=True)
class BiradsPoint:
  """The radiologist's decision "refer when BI-RADS >= category" on the compared scans."""
  category: int
  sensitivity: op.Proportion
  specificity: op.Proportion

  @property
  def name(self) -> str:
    """'BI-RADS >= 4'; the highest category reads 'BI-RADS 5'."""
    return f'BI-RADS {self.category}' if self.category == max(BIRADS_THRESHOLDS) else (
        f'BI-RADS >= {self.category}')


@dataclasses.dataclass(frozen=True)
class RadiologistComparison:
  """The model and BI-RADS on the same benign and malignant scans."""
  scans: int                      # benign or malignant, with a BI-RADS reading
  malignant: int
  model_auc: float                # of the model's malignancy score
  birads_auc: float               # of the BI-RADS category as a score (ties count half)
  birads_points: Tuple[BiradsPoint, ...]
  # The model referring at most as many benign scans as BI-RADS >= 4 does:
  # its threshold (a score above it is referred; None: every scan is, as
  # BI-RADS >= 4 refers every benign scan), sensitivity and specificity.
  model_threshold_at_biopsy_specificity: Optional[float]
  model_sensitivity_at_biopsy_specificity: op.Proportion
  model_specificity_at_biopsy_specificity: op.Proportion

  def point(self, category: int) -> BiradsPoint:
    return next(p for p in self.birads_points if p.category == category)


def proportion(successes: int, total: int) -> op.Proportion:
  """A rate with the operating point's interval (two-sided Clopper-Pearson, 95%)."""
  if total == 0:
    return op.Proportion(0, 0, None, None, None)
  interval = stats.binomtest(successes, total).proportion_ci(op.CONFIDENCE, 'exact')
  return op.Proportion(int(successes), int(total), successes / total,
                       float(interval.low), float(interval.high))


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
  """Area under the ROC curve (Mann-Whitney, ties count half); NaN with one class."""
  positive = positive.astype(bool)
  positives, negatives = int(positive.sum()), int((~positive).sum())
  if not positives or not negatives:
    return float('nan')
  ranks = stats.rankdata(scores)
  return float((ranks[positive].sum() - positives * (positives + 1) / 2)
               / (positives * negatives))


def compare(is_malignant: np.ndarray, model_scores: np.ndarray,
            birads: np.ndarray) -> Optional[RadiologistComparison]:
  """The comparison over the scans with a reading; None without both classes among them.

  Args:
    is_malignant: bool [n], the pathology (benign or malignant scans only).
    model_scores: float [n], higher is more suspicious (e.g. p(malignant)).
    birads: float [n], the category, NaN where the scan has no reading.
  """
  read = ~np.isnan(birads)
  is_malignant, scores, birads = is_malignant[read].astype(bool), model_scores[read], birads[read]
  malignant, benign = int(is_malignant.sum()), int((~is_malignant).sum())
  if not malignant or not benign:
    return None
  points = tuple(
      BiradsPoint(category,
                  proportion(int((birads[is_malignant] >= category).sum()), malignant),
                  proportion(int((birads[~is_malignant] < category).sum()), benign))
      for category in BIRADS_THRESHOLDS)
  # As many benign scans below the model's threshold as below BI-RADS 4: the
  # threshold is the highest of those benign scores, and only scores above it
  # are referred (ties with it stay unreferred, so the specificity is at least
  # the radiologist's).
  kept_benign = int((birads[~is_malignant] < BIOPSY_CATEGORY).sum())
  threshold = (None if kept_benign == 0
               else float(np.sort(scores[~is_malignant])[kept_benign - 1]))
  referred = np.ones_like(is_malignant) if threshold is None else scores > threshold
  return RadiologistComparison(
      scans=int(is_malignant.size), malignant=malignant,
      model_auc=auc(scores, is_malignant), birads_auc=auc(birads, is_malignant),
      birads_points=points,
      model_threshold_at_biopsy_specificity=threshold,
      model_sensitivity_at_biopsy_specificity=proportion(
          int(referred[is_malignant].sum()), malignant),
      model_specificity_at_biopsy_specificity=proportion(
          int((~referred[~is_malignant]).sum()), benign))
