"""The blessing rules: what a candidate must reach to be pushed.

Accuracy and malignant sensitivity must reach their floors on the whole test
split and must not fall more than `regression_tolerance` below the served
model's (TFMA thresholds: a value threshold and a change threshold, which TFX
ignores when nothing is served yet). At every site with at least
`min_site_malignant_examples` malignant test scans, the per-site gate
(blessing/site_gate.py) applies the malignant floor and the tolerance again.
Malignant sensitivity is taken at the served decision, the malignant operating
point the Trainer chose (blessing/clinical_metrics.py), so the floor gates what
a clinic receives. The accuracy floor is TFMA's top-class accuracy, a measure of
the scores: the threshold deliberately gives up specificity, and so three-way
accuracy at the decision (`accuracy_at_decision`, reported beside it), for the
sensitivity the floor above gates; a floor on the three-way accuracy would punish
a higher target sensitivity and pull the threshold back towards the argmax.

The Evaluator receives the rules as execution parameters of their own, never
inside its compiled `eval_config`, adds the thresholds to that config
(`gated_eval_config`), and records the rules on its blessing (`record`); the
Pusher reads them back from there (`recorded`) for the model card.
"""

import dataclasses
import json
from typing import Dict, List

import tensorflow_model_analysis as tfma
from tfx import types

from contracts import configs
from contracts import names

# Below any tolerance: "not worse than the served model" must pass an equal score.
CHANGE_SLACK = 1e-9


@dataclasses.dataclass(frozen=True)
class BlessingRules:
  """The rules of one run; each field is `configs.EvaluationConfig`'s of that name."""
  min_accuracy: float
  min_malignant_recall: float
  regression_tolerance: float
  min_site_malignant_examples: int

  def __post_init__(self):
    # Checked as the configuration checks them: a run parameter out of range
    # stops the Evaluator with the field's name.
    configs.EvaluationConfig(**dataclasses.asdict(self))

  @classmethod
  def of(cls, evaluation: configs.EvaluationConfig) -> 'BlessingRules':
    return cls(**{field.name: getattr(evaluation, field.name)
                  for field in dataclasses.fields(cls)})

  @property
  def floors(self) -> Dict[str, float]:
    """Metric name -> the lower bound a candidate must reach on the whole split."""
    return {names.ACCURACY_METRIC: self.min_accuracy,
            names.MALIGNANT_SENSITIVITY_METRIC: self.min_malignant_recall}


def _thresholds(lower_bound: float, tolerance: float) -> List[tfma.PerSliceMetricThreshold]:
  """A floor and a no-regression rule, on the whole test split only.

  Per-label slices cannot carry them: a malignant-only slice has no specificity.
  """
  return [tfma.PerSliceMetricThreshold(
      slicing_specs=[tfma.SlicingSpec()],
      threshold=tfma.MetricThreshold(
          value_threshold=tfma.GenericValueThreshold(lower_bound={'value': lower_bound}),
          change_threshold=tfma.GenericChangeThreshold(
              direction=tfma.MetricDirection.HIGHER_IS_BETTER,
              absolute={'value': -tolerance - CHANGE_SLACK})))]


def metric_name(metric: tfma.MetricConfig) -> str:
  """The name TFMA reports a configured metric under."""
  return json.loads(metric.config or '{}').get('name', metric.class_name)


def gated_eval_config(eval_config: tfma.EvalConfig, rules: BlessingRules) -> tfma.EvalConfig:
  """A copy of `eval_config` whose floored metrics carry the rules' thresholds.

  Raises ValueError when `eval_config` already has thresholds (they would be a
  second source of the rules) or does not compute a floored metric.
  """
  gated = tfma.EvalConfig()
  gated.CopyFrom(eval_config)
  found = set()
  for spec in gated.metrics_specs:
    if spec.thresholds or spec.per_slice_thresholds:
      raise ValueError('The eval config has thresholds of its own; the blessing rules '
                       'are the only thresholds.')
    for metric in spec.metrics:
      name = metric_name(metric)
      if metric.per_slice_thresholds or metric.HasField('threshold'):
        raise ValueError(f'The eval config has a threshold on {name}; the blessing '
                         'rules are the only thresholds.')
      if name in rules.floors:
        metric.per_slice_thresholds.extend(
            _thresholds(rules.floors[name], rules.regression_tolerance))
        found.add(name)
  missing = sorted(set(rules.floors) - found)
  if missing:
    raise ValueError(f'The eval config computes no metric named {", ".join(missing)}, '
                     'so its floor cannot be applied.')
  return gated


def record(rules: BlessingRules, blessing: types.Artifact) -> None:
  """Writes the rules on the Evaluator's blessing."""
  blessing.set_string_custom_property(
      names.BLESSING_RULES_PROPERTY, json.dumps(dataclasses.asdict(rules), sort_keys=True))


def recorded(blessing: types.Artifact) -> BlessingRules:
  """The rules the Evaluator applied, from its blessing."""
  return BlessingRules(**json.loads(
      blessing.get_string_custom_property(names.BLESSING_RULES_PROPERTY)))
