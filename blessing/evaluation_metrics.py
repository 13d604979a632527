"""The Evaluator's metrics read back by name, for the model card, the gate and the summary.

TFMA stores the metrics by slice and by sub-key; the whole split is the empty
slice, and each one-vs-rest metric sits under `classId:<i>`, which becomes a
`_<class name>` suffix here. Undefined values (NaN: a rate without cases, e.g.
the recall of a class a site lacks) are kept as NaN here; contracts/metric_values
turns them into None and "n/a" where they are written down.
"""

import re
from typing import Any, Dict, Optional, Sequence, Tuple

import tensorflow_model_analysis as tfma

# How TFX's Evaluator names the models of a comparison.
CANDIDATE_MODEL = 'candidate'
BASELINE_MODEL = 'baseline'


def _named_values(by_output: Dict[str, Any], class_names: Sequence[str]) -> Dict[str, float]:
  metrics = {}
  for sub_key, values in by_output.get('', {}).items():
    binarized = re.fullmatch(r'classId:(\d+)', sub_key)
    suffix = f'_{class_names[int(binarized.group(1))]}' if binarized else ''
    for name, value in values.items():
      if 'doubleValue' in value:
        metrics[name + suffix] = float(value['doubleValue'])
  return metrics


def _slice_value(value: Any) -> str:
  return value.decode('utf-8', 'replace') if isinstance(value, bytes) else str(value)


def overall_metrics(evaluation_uri: str, class_names: Sequence[str],
                    model_name: Optional[str] = None) -> Dict[str, float]:
  """Metrics of the whole split; binarized ones get their class name appended.

  `model_name` picks the model of a comparison (e.g. 'baseline'); None: the candidate.
  """
  result = tfma.load_eval_result(evaluation_uri, model_name=model_name)
  return next((_named_values(by_output, class_names)
               for slice_key, by_output in result.slicing_metrics if not slice_key), {})


def sliced_metrics(evaluation_uri: str, class_names: Sequence[str],
                   feature_keys: Sequence[str], model_name: Optional[str] = None
                   ) -> Dict[Tuple[str, ...], Dict[str, float]]:
  """(value of each of `feature_keys`) -> metrics, for the slices on exactly those features.

  Empty when the examples lack the features (TFMA makes no such slices).
  """
  result = tfma.load_eval_result(evaluation_uri, model_name=model_name)
  by_slice = {}
  for slice_key, by_output in result.slicing_metrics:
    columns = dict(slice_key or ())
    if slice_key and sorted(columns) == sorted(feature_keys):
      key = tuple(_slice_value(columns[feature]) for feature in feature_keys)
      by_slice[key] = _named_values(by_output, class_names)
  return by_slice


def site_metrics(evaluation_uri: str, class_names: Sequence[str], site_key: str,
                 model_name: Optional[str] = None) -> Dict[str, Dict[str, float]]:
  """site -> its metrics; empty when the examples carry no site."""
  return {site: metrics for (site,), metrics in sliced_metrics(
      evaluation_uri, class_names, [site_key], model_name).items()}

