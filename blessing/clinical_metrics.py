"""Per-class rates at the served decision, the decision clients receive.

A clinician reads "malignant sensitivity" as: of the malignant scans, how many
did the model refer. The served decision (models/signatures.py) is the class at
the malignant operating point: malignant when the malignant score reaches the
threshold the model returns as `malignant_threshold`, else the more probable
of the other classes. A model exported before operating points (a served
baseline of an older run) returns no threshold; its decision is the argmax, as
it served. TFMA 0.47's `Recall(class_id=..., top_k=1)` computes neither (its
top-k masking counts every example as positive), so `ClassRateAtDecision`
counts one-vs-rest outcomes of the decision itself, and files the value under a
plain metric name that TFMA thresholds can gate on. Its 'count' is the number
of examples labelled `class_id`: how many malignant scans a site's sensitivity
rests on. Its 'accuracy' is three-way: the share of all examples whose decision
(refer counted as malignant) is their label, whatever `class_id`; TFMA's
SparseCategoricalAccuracy beside it stays the top-class accuracy.
"""

from typing import Any, Dict, Iterable, List, Mapping, Optional

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.metrics import metric_util

from contracts import serving

RATES = ('recall', 'specificity', 'precision', 'count', 'accuracy')
_TP, _FN, _FP, _TN = range(4)
# For 'accuracy', the right decisions count as _TP and the wrong ones as _FN.


class ClassRateAtDecision(metric_types.Metric):
  """Recall (sensitivity), specificity, precision or count of `class_id` at the
  served decision, or the decision's three-way accuracy; `malignant_id` is the
  class the model's threshold applies to."""

  def __init__(self, name: str, class_id: int, malignant_id: int, rate: str = 'recall'):
    if rate not in RATES:
      raise ValueError(f'rate must be one of {RATES}, got {rate!r}')
    super().__init__(_computations, name=name, class_id=class_id,
                     malignant_id=malignant_id, rate=rate)


def decided_class(scores: np.ndarray, malignant_id: int,
                  malignant_threshold: Optional[float]) -> int:
  """The served decision as a class index; the argmax without a threshold."""
  if malignant_threshold is None:
    return int(np.argmax(scores))
  if scores[malignant_id] >= malignant_threshold:
    return malignant_id
  others = np.array(scores, np.float64)
  others[malignant_id] = -np.inf
  return int(np.argmax(others))


def _threshold_of(predictions: Any) -> Optional[float]:
  """The `malignant_threshold` a model returned for one example, if it returns one."""
  if not isinstance(predictions, Mapping) or serving.THRESHOLD_OUTPUT not in predictions:
    return None
  return np.asarray(predictions[serving.THRESHOLD_OUTPUT], np.float32).reshape(-1)[0]


def rate_from_counts(counts: np.ndarray, rate: str) -> float:
  """counts = [tp, fn, fp, tn]; NaN when the rate's denominator is 0.

  'count' is the weighted number of examples labelled as the class (tp + fn);
  'accuracy' reads [right, wrong, 0, 0].
  """
  if rate == 'count':
    return float(counts[_TP] + counts[_FN])
  numerator, other = {
      'recall': (_TP, _FN), 'specificity': (_TN, _FP), 'precision': (_TP, _FP),
      'accuracy': (_TP, _FN)}[rate]
  total = counts[numerator] + counts[other]
  return float(counts[numerator] / total) if total else float('nan')


class _DecisionOutcomes(beam.CombineFn):
  """Sums weighted [tp, fn, fp, tn] of 'decision == class_id' vs 'label == class_id'."""

  def __init__(self, key: metric_types.MetricKey, eval_config, class_id: int,
               malignant_id: int, rate: str):
    self._key = key
    self._eval_config = eval_config
    self._class_id = class_id
    self._malignant_id = malignant_id
    self._rate = rate

  def create_accumulator(self) -> np.ndarray:
    return np.zeros(4)

  def add_input(self, counts: np.ndarray,
                element: metric_types.StandardMetricInputs) -> np.ndarray:
    threshold = _threshold_of(element.get_predictions(self._key.model_name,
                                                      self._key.output_name))
    for label, prediction, weight in metric_util.to_label_prediction_example_weight(
        element, eval_config=self._eval_config, model_name=self._key.model_name,
        output_name=self._key.output_name,
        example_weighted=self._key.example_weighted, flatten=False,
        require_single_example_weight=True):
      actual = int(np.argmax(label)) if label.size > 1 else int(label)
      decided = decided_class(prediction, self._malignant_id, threshold)
      if self._rate == 'accuracy':
        counts[_TP if decided == actual else _FN] += float(weight)
        continue
      positive_label = actual == self._class_id
      positive_call = decided == self._class_id
      outcome = (_TP if positive_call else _FN) if positive_label else (
          _FP if positive_call else _TN)
      counts[outcome] += float(weight)
    return counts

  def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
    return np.sum(list(accumulators), axis=0)

  def extract_output(self, counts: np.ndarray) -> Dict[metric_types.MetricKey, float]:
    return {self._key: rate_from_counts(counts, self._rate)}


def _computations(name: str, class_id: int, malignant_id: int, rate: str,
                  eval_config=None,
                  model_names: Optional[List[str]] = None,
                  output_names: Optional[List[str]] = None,
                  example_weighted: bool = False) -> List[Any]:
  computations = []
  for model_name in model_names or ['']:
    for output_name in output_names or ['']:
      key = metric_types.MetricKey(name=name, model_name=model_name,
                                   output_name=output_name,
                                   example_weighted=example_weighted)
      computations.append(metric_types.MetricComputation(
          keys=[key], preprocessors=None,
          combiner=_DecisionOutcomes(key, eval_config, class_id, malignant_id, rate)))
  return computations
