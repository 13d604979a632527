"""The Evaluator's metrics read back by name, for the model card and the run summary.

TFMA stores the metrics by slice and by sub-key; the whole split is the empty
slice, and each one-vs-rest metric sits under `classId:<i>`, which becomes a
`_<class name>` suffix here.
"""

import re
from typing import Dict, Optional, Sequence

import tensorflow_model_analysis as tfma


def overall_metrics(evaluation_uri: str, class_names: Sequence[str],
                    model_name: Optional[str] = None) -> Dict[str, float]:
  """Metrics of the whole split; binarized ones get their class name appended.

  `model_name` picks the model of a comparison (e.g. 'baseline'); None: the candidate.
  """
  result = tfma.load_eval_result(evaluation_uri, model_name=model_name)
  metrics = {}
  for slice_key, by_output in result.slicing_metrics:
    if slice_key:
      continue
    for sub_key, values in by_output.get('', {}).items():
      binarized = re.fullmatch(r'classId:(\d+)', sub_key)
      suffix = f'_{class_names[int(binarized.group(1))]}' if binarized else ''
      for name, value in values.items():
        if 'doubleValue' in value:
          metrics[name + suffix] = float(value['doubleValue'])
  return metrics
