"""The TFMA configuration: clinically meaningful metrics and the blessing rules.

Accuracy alone hides a model that misses cancers, so malignant sensitivity and
specificity (argmax decisions, one class against the rest) are computed and
gated on, next to per-class precision/recall and one-vs-rest AUC. Every gated
metric must also not fall below the served model's (change thresholds, which
TFX ignores when nothing is served yet). The floors and the tolerance written
here are the configured ones; the Evaluator applies a run's own
(components/served_baseline_evaluator.py) in the same place.

The metrics are also sliced by `site` (and, when asked, by `device` and site x
device). A single-folder run's examples all carry the site `default`, whose
slice is the whole split. TFMA's thresholds stay on the whole split: the per-site rules need
each site's malignant count, so components/site_gate.py applies them after TFMA.
"""

import json
from typing import List, Sequence

import tensorflow_model_analysis as tfma

from components import served_baseline_evaluator
from contracts import configs
from contracts import features
from contracts import names
from contracts import serving
from pipeline import clinical_metrics

MALIGNANT_SPECIFICITY = names.MALIGNANT_SPECIFICITY_METRIC


def _metric(class_name: str, per_slice_thresholds=(), **config) -> tfma.MetricConfig:
  return tfma.MetricConfig(class_name=class_name, config=json.dumps(config),
                           per_slice_thresholds=list(per_slice_thresholds))


def _clinical_metric(name: str, class_id: int, rate: str,
                     per_slice_thresholds=()) -> tfma.MetricConfig:
  return tfma.MetricConfig(
      class_name=clinical_metrics.ClassRateAtArgmax.__name__,
      module=clinical_metrics.__name__,
      config=json.dumps({'name': name, 'class_id': class_id, 'rate': rate}),
      per_slice_thresholds=list(per_slice_thresholds))


def _per_class(class_names: Sequence[str]) -> List[tfma.MetricConfig]:
  """Precision and recall of each class at the argmax decision, and its example count."""
  return [_clinical_metric(f'{name}_{rate}', index, rate)
          for index, name in enumerate(class_names)
          for rate in ('precision', 'recall')] + [
              _clinical_metric(f'{name}{names.CLASS_EXAMPLES_SUFFIX}', index, 'count')
              for index, name in enumerate(class_names)]


def slicing_specs(evaluation: configs.EvaluationConfig) -> List[tfma.SlicingSpec]:
  """The whole split, each label, each site; with `slice_by_device` each device
  and each site x device too."""
  specs = [tfma.SlicingSpec(),
           tfma.SlicingSpec(feature_keys=[features.LABEL_KEY]),
           tfma.SlicingSpec(feature_keys=[features.SITE_KEY])]
  if evaluation.slice_by_device:
    specs += [tfma.SlicingSpec(feature_keys=[features.DEVICE_KEY]),
              tfma.SlicingSpec(feature_keys=[features.SITE_KEY, features.DEVICE_KEY])]
  return specs


def create_eval_config(evaluation: configs.EvaluationConfig,
                       class_names: Sequence[str]) -> tfma.EvalConfig:
  malignant = list(class_names).index(features.MALIGNANT_CLASS)
  tolerance = evaluation.regression_tolerance
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name=serving.SERVING_DEFAULT,
                                  label_key=features.LABEL_KEY)],
      slicing_specs=slicing_specs(evaluation),
      metrics_specs=[
          tfma.MetricsSpec(metrics=[
              _metric('ExampleCount'),
              _metric('SparseCategoricalAccuracy', served_baseline_evaluator.blessing_thresholds(
                  evaluation.min_accuracy, tolerance), name=names.ACCURACY_METRIC),
              _clinical_metric(
                  names.MALIGNANT_SENSITIVITY_METRIC, malignant, 'recall',
                  served_baseline_evaluator.blessing_thresholds(
                      evaluation.min_malignant_recall, tolerance)),
              _clinical_metric(MALIGNANT_SPECIFICITY, malignant, 'specificity'),
              _metric('MultiClassConfusionMatrixPlot'),
              *_per_class(class_names),
          ]),
          tfma.MetricsSpec(
              binarize=tfma.BinarizationOptions(
                  class_ids={'values': list(range(len(class_names)))}),
              metrics=[_metric('AUC', name=names.AUC_METRIC), _metric('CalibrationPlot')]),
      ])
