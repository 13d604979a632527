"""The TFMA config computes the clinical metrics, on the slices asked for, and gates nothing."""

import json

import tensorflow_model_analysis as tfma

from contracts import features
from pipeline import eval_config


def _computed(config):
  return {json.loads(m.config or '{}').get('name', m.class_name)
          for spec in config.metrics_specs for m in spec.metrics}


def test_slices_by_label_and_reports_clinical_metrics():
  config = eval_config.create_eval_config(features.CLASS_NAMES, slice_by_device=False)
  assert tfma.SlicingSpec(feature_keys=['label']) in config.slicing_specs
  assert {'accuracy', 'malignant_sensitivity', 'malignant_specificity', 'benign_recall',
          'normal_precision', 'auc', 'MultiClassConfusionMatrixPlot',
          'CalibrationPlot'} <= _computed(config)
  tfma.utils.verify_eval_config(config)


def test_carries_no_threshold_the_blessing_rules_would_override():
  config = eval_config.create_eval_config(features.CLASS_NAMES, slice_by_device=True)
  assert not any(spec.thresholds or spec.per_slice_thresholds
                 for spec in config.metrics_specs)
  assert not any(metric.per_slice_thresholds or metric.HasField('threshold')
                 for spec in config.metrics_specs for metric in spec.metrics)


def test_slices_by_site_and_on_request_by_device_and_site_x_device():
  site = tfma.SlicingSpec(feature_keys=[features.SITE_KEY])
  device = tfma.SlicingSpec(feature_keys=[features.DEVICE_KEY])
  crossed = tfma.SlicingSpec(feature_keys=[features.SITE_KEY, features.DEVICE_KEY])
  default = eval_config.create_eval_config(features.CLASS_NAMES, slice_by_device=False)
  assert site in default.slicing_specs
  assert device not in default.slicing_specs and crossed not in default.slicing_specs
  by_device = eval_config.create_eval_config(features.CLASS_NAMES, slice_by_device=True)
  assert {str(s) for s in (site, device, crossed)} <= {str(s) for s in by_device.slicing_specs}
  assert {'benign_examples', 'malignant_examples', 'normal_examples'} <= _computed(by_device)
  tfma.utils.verify_eval_config(by_device)
