"""The TFMA config gates on what the issue asks for, on the whole split only."""

import json

import tensorflow_model_analysis as tfma

from contracts import configs
from contracts import features
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
  assert set(thresholds) == {eval_config.ACCURACY, eval_config.MALIGNANT_SENSITIVITY}
  assert thresholds[eval_config.ACCURACY][0] == 0.80
  assert thresholds[eval_config.MALIGNANT_SENSITIVITY][0] == 0.75
  for _, tolerance, slices in thresholds.values():
    assert -1e-6 < tolerance < 0  # no regression against the served model
    assert slices == [tfma.SlicingSpec()]  # overall slice only


def test_thresholds_and_tolerance_follow_the_config():
  thresholds = _thresholds(_config(min_accuracy=0.9, min_malignant_recall=0.95,
                                   regression_tolerance=0.02))
  assert thresholds[eval_config.ACCURACY][:2] == (0.9, -0.02 - 1e-9)
  assert thresholds[eval_config.MALIGNANT_SENSITIVITY][0] == 0.95


def test_slices_by_label_and_reports_clinical_metrics():
  config = _config()
  assert tfma.SlicingSpec(feature_keys=['label']) in config.slicing_specs
  names = {json.loads(m.config or '{}').get('name', m.class_name)
           for spec in config.metrics_specs for m in spec.metrics}
  assert {'malignant_specificity', 'benign_recall', 'normal_precision', 'auc',
          'MultiClassConfusionMatrixPlot', 'CalibrationPlot'} <= names
  tfma.utils.verify_eval_config(config)


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
