"""The TFMA config gates on what the issue asks for, on the whole split only."""

import json

import pytest
import tensorflow_model_analysis as tfma

from components import served_baseline_evaluator
from contracts import configs
from contracts import features
from contracts import names
from pipeline import eval_config


def _config(**overrides):
  return eval_config.create_eval_config(
      configs.EvaluationConfig(**overrides), features.CLASS_NAMES)


def _thresholds(config):
  """metric name -> (lower bound, change tolerance, slicing specs)."""
  found = {}
  for spec in config.metrics_specs:
    for metric in spec.metrics:
      for per_slice in metric.per_slice_thresholds:
        name = json.loads(metric.config or '{}').get('name', metric.class_name)
        found[name] = (per_slice.threshold.value_threshold.lower_bound.value,
                       per_slice.threshold.change_threshold.absolute.value,
                       list(per_slice.slicing_specs))
  return found


def test_default_gates_are_accuracy_and_malignant_sensitivity():
  thresholds = _thresholds(_config())
  assert set(thresholds) == {names.ACCURACY_METRIC, names.MALIGNANT_SENSITIVITY_METRIC}
  assert thresholds[names.ACCURACY_METRIC][0] == 0.80
  assert thresholds[names.MALIGNANT_SENSITIVITY_METRIC][0] == 0.75
  for _, tolerance, slices in thresholds.values():
    assert -1e-6 < tolerance < 0  # no regression against the served model
    assert slices == [tfma.SlicingSpec()]  # overall slice only


def test_thresholds_and_tolerance_follow_the_config():
  thresholds = _thresholds(_config(min_accuracy=0.9, min_malignant_recall=0.95,
                                   regression_tolerance=0.02))
  assert thresholds[names.ACCURACY_METRIC][:2] == (0.9, -0.02 - 1e-9)
  assert thresholds[names.MALIGNANT_SENSITIVITY_METRIC][0] == 0.95


def test_slices_by_label_and_reports_clinical_metrics():
  config = _config()
  assert tfma.SlicingSpec(feature_keys=['label']) in config.slicing_specs
  computed = {json.loads(m.config or '{}').get('name', m.class_name)
              for spec in config.metrics_specs for m in spec.metrics}
  assert {'malignant_specificity', 'benign_recall', 'normal_precision', 'auc',
          'MultiClassConfusionMatrixPlot', 'CalibrationPlot'} <= computed
  tfma.utils.verify_eval_config(config)


def test_the_evaluator_replaces_the_floors_and_tolerance_of_a_run():
  """A run's own blessing rules land where the configured ones were, nowhere else."""
  configured = _config()
  rules = served_baseline_evaluator.rules_from({
      served_baseline_evaluator.MIN_ACCURACY_KEY: 1.0,
      served_baseline_evaluator.MIN_MALIGNANT_RECALL_KEY: 0.5,
      served_baseline_evaluator.REGRESSION_TOLERANCE_KEY: 0.1})
  gated = served_baseline_evaluator.with_blessing_rules(
      configured, served_baseline_evaluator.floors_of(rules), rules.regression_tolerance)
  thresholds = _thresholds(gated)
  assert thresholds[names.ACCURACY_METRIC][:2] == (1.0, -0.1 - 1e-9)
  assert thresholds[names.MALIGNANT_SENSITIVITY_METRIC][:2] == (0.5, -0.1 - 1e-9)
  assert set(thresholds) == set(_thresholds(configured))
  assert _thresholds(configured)[names.ACCURACY_METRIC][0] == 0.80  # a copy was changed


def test_a_floor_out_of_range_or_for_a_metric_not_computed_is_refused():
  with pytest.raises(configs.ConfigError, match='evaluation.min_accuracy'):
    served_baseline_evaluator.rules_from({
        served_baseline_evaluator.MIN_ACCURACY_KEY: 1.5,
        served_baseline_evaluator.MIN_MALIGNANT_RECALL_KEY: 0.5,
        served_baseline_evaluator.REGRESSION_TOLERANCE_KEY: 0.0})
  with pytest.raises(ValueError, match='no metric named auc_floor'):
    served_baseline_evaluator.with_blessing_rules(_config(), {'auc_floor': 0.5}, 0.0)


def test_slices_by_site_and_on_request_by_device_and_site_x_device():
  site = tfma.SlicingSpec(feature_keys=[features.SITE_KEY])
  device = tfma.SlicingSpec(feature_keys=[features.DEVICE_KEY])
  crossed = tfma.SlicingSpec(feature_keys=[features.SITE_KEY, features.DEVICE_KEY])
  default = _config()
  assert site in default.slicing_specs
  assert device not in default.slicing_specs and crossed not in default.slicing_specs
  by_device = _config(slice_by_device=True)
  assert {str(s) for s in (site, device, crossed)} <= {str(s) for s in by_device.slicing_specs}
  names = {json.loads(m.config or '{}').get('name', m.class_name)
           for spec in by_device.metrics_specs for m in spec.metrics}
  assert {'benign_examples', 'malignant_examples', 'normal_examples'} <= names
  tfma.utils.verify_eval_config(by_device)
