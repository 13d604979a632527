"""The blessing rules become TFMA thresholds on the whole split and travel on the blessing."""

import pytest
import tensorflow_model_analysis as tfma
from tfx.types import standard_artifacts

from blessing import rules
from contracts import configs
from contracts import features
from contracts import names
from pipeline import eval_config

_RULES = rules.BlessingRules(min_accuracy=0.9, min_malignant_recall=0.95,
                             regression_tolerance=0.02, min_site_malignant_examples=10)


def _thresholds(config):
  """metric name -> (lower bound, change tolerance, slicing specs)."""
  found = {}
  for spec in config.metrics_specs:
    for metric in spec.metrics:
      for per_slice in metric.per_slice_thresholds:
        found[rules.metric_name(metric)] = (
            per_slice.threshold.value_threshold.lower_bound.value,
            per_slice.threshold.change_threshold.absolute.value,
            list(per_slice.slicing_specs))
  return found


def _metrics_only():
  return eval_config.create_eval_config(features.CLASS_NAMES, slice_by_device=False)


def test_the_floors_gate_accuracy_and_malignant_sensitivity_on_the_whole_split():
  compiled = _metrics_only()
  thresholds = _thresholds(rules.gated_eval_config(compiled, _RULES))
  assert thresholds == {
      names.ACCURACY_METRIC: (0.9, -0.02 - rules.CHANGE_SLACK, [tfma.SlicingSpec()]),
      names.MALIGNANT_SENSITIVITY_METRIC: (0.95, -0.02 - rules.CHANGE_SLACK,
                                           [tfma.SlicingSpec()])}
  assert _thresholds(compiled) == {}  # a copy was gated
  tfma.utils.verify_eval_config(rules.gated_eval_config(compiled, _RULES))


def test_no_regression_means_an_equal_score_passes_and_a_lower_one_fails():
  thresholds = _thresholds(rules.gated_eval_config(
      _metrics_only(), rules.BlessingRules.of(configs.EvaluationConfig())))
  for _, tolerance, _ in thresholds.values():
    assert -1e-6 < tolerance < 0


def test_a_compiled_threshold_or_a_floor_on_a_metric_not_computed_is_refused():
  gated = rules.gated_eval_config(_metrics_only(), _RULES)
  with pytest.raises(ValueError, match='threshold on accuracy'):
    rules.gated_eval_config(gated, _RULES)
  without_accuracy = _metrics_only()
  del without_accuracy.metrics_specs[0].metrics[1]
  with pytest.raises(ValueError, match='no metric named accuracy'):
    rules.gated_eval_config(without_accuracy, _RULES)


def test_a_rule_out_of_range_is_refused_by_the_configs_field_name():
  with pytest.raises(configs.ConfigError, match='evaluation.min_accuracy'):
    rules.BlessingRules(min_accuracy=1.5, min_malignant_recall=0.5,
                        regression_tolerance=0.0, min_site_malignant_examples=10)


def test_the_rules_round_trip_through_the_blessing():
  blessing = standard_artifacts.ModelBlessing()
  rules.record(_RULES, blessing)
  assert rules.recorded(blessing) == _RULES
  assert rules.recorded(blessing).floors == {names.ACCURACY_METRIC: 0.9,
                                             names.MALIGNANT_SENSITIVITY_METRIC: 0.95}


def test_the_rules_of_a_configuration_are_its_evaluation_fields():
  evaluation = configs.EvaluationConfig(min_accuracy=0.7, min_site_malignant_examples=3)
  assert rules.BlessingRules.of(evaluation) == rules.BlessingRules(
      0.7, evaluation.min_malignant_recall, evaluation.regression_tolerance, 3)
