"""The malignant operating point: the threshold the served decision uses, and what it promises.

The Trainer chooses it on the eval split (models/operating_point.py) and
writes it beside the SavedModel (`assets.extra/operating_point.json`); the
serving signatures bake the threshold in, and the model card and the run
summary read this record back to state the expected sensitivity and
specificity with their intervals.
"""

import dataclasses
import json
from typing import Dict, Mapping, Optional, Tuple

from contracts import features

# The clinical decision the served model returns for each scan.
REFER_DECISION = 'refer'          # malignant score at or above the threshold

# Intervals are exact binomial (Clopper-Pearson) intervals at this confidence:
# two-sided for the reported intervals, one-sided (lower) for the bound the
# threshold is chosen by.
CONFIDENCE = 0.95
BOUND_METHOD = 'Clopper-Pearson'

# Beside the SavedModel, next to the Trainer's record: the operating points of
# sites that set their own (site_threshold.py), which the client applies to
# the served scores (docs/serving.md).
SITE_POINTS_FILE = 'site_operating_points.json'
# The split name of a site's own operating point.
SITE_EXPORT_SPLIT = 'labelled export'


@dataclasses.dataclass(frozen=True)
class Proportion:
  """A rate on the eval split with its two-sided Clopper-Pearson interval.

  `estimate`, `lower` and `upper` are None when `total` is 0: nothing to measure.
  """
  successes: int
  total: int
  estimate: Optional[float]
  lower: Optional[float]
  upper: Optional[float]

  def text(self) -> str:
    if self.estimate is None:
      return 'not measured (no scans)'
    return (f'{self.estimate:.3f} ({self.successes}/{self.total}; '
            f'{CONFIDENCE:.0%} CI {self.lower:.3f}-{self.upper:.3f})')


@dataclasses.dataclass(frozen=True)
class OperatingPoint:
  """A malignant score at or above `threshold` is referred; see models/operating_point.py."""
  threshold: float
  target_sensitivity: float
  sensitivity: Proportion           # malignant eval scans referred
  specificity: Proportion           # other eval scans not referred
  # One-sided lower confidence bound on the sensitivity (None without malignant scans).
  sensitivity_lower_bound: Optional[float]
  # Whether that bound reaches the target; when no threshold makes it, the eval
  # split is too small, and the threshold is the highest whose observed
  # sensitivity reaches the target.
  target_bound_met: bool
  split: str = 'eval'
  confidence: float = CONFIDENCE
  bound_method: str = BOUND_METHOD
  # The site whose scans it was chosen on; '' for the Trainer's, on the eval
  # split of every site it trained with.
  site: str = ''

  def summary_line(self) -> str:
    """One line for people: the threshold and what it is expected to do."""
    bound = ('no malignant eval scan, so every scan is referred'
             if self.sensitivity_lower_bound is None else
             f'one-sided {self.confidence:.0%} {self.bound_method} lower bound '
             f'{self.sensitivity_lower_bound:.3f}'
             + ('' if self.target_bound_met else ', below the target: too few malignant '
                'eval scans to show it'))
    where = f'the {self.split} split' + (f' of site {self.site}' if self.site else '')
    return (f'malignant threshold {self.threshold:.4f} for sensitivity '
            f'{self.target_sensitivity:.2f} on {where}: sensitivity '
            f'{self.sensitivity.text()}, specificity {self.specificity.text()}; {bound}')


def to_json(point: OperatingPoint) -> str:
  return json.dumps(dataclasses.asdict(point), indent=1, sort_keys=True,
                    allow_nan=False) + '\n'


def from_dict(fields: dict) -> OperatingPoint:
  return OperatingPoint(**{**fields,
                           'sensitivity': Proportion(**fields['sensitivity']),
                           'specificity': Proportion(**fields['specificity'])})


def from_json(text: str) -> OperatingPoint:
  return from_dict(json.loads(text))


def sites_to_json(points: Dict[str, OperatingPoint]) -> str:
  return json.dumps({site: dataclasses.asdict(point) for site, point in points.items()},
                    indent=1, sort_keys=True, allow_nan=False) + '\n'


def sites_from_json(text: str) -> Dict[str, OperatingPoint]:
  return {site: from_dict(fields) for site, fields in json.loads(text).items()}


def decision_at(probabilities: Mapping[str, float], threshold: float) -> Tuple[str, str]:
  """(decision, class) at `threshold`, from the served scores by class name in the
  model's order: what the signatures return at their own threshold, for a client
  applying a site's. A tie goes to the earlier class, as the signatures' argmax."""
  if probabilities[features.MALIGNANT_CLASS] >= threshold:
    return REFER_DECISION, features.MALIGNANT_CLASS
  other = max((name for name in probabilities if name != features.MALIGNANT_CLASS),
              key=probabilities.__getitem__)
  return other, other
