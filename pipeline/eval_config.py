"""The TFMA configuration: clinically meaningful metrics, and the slices they are read on.

Accuracy alone hides a model that misses cancers, so malignant sensitivity and
specificity (at the served decision, the malignant operating point: one class
against the rest, blessing/clinical_metrics.py) are computed next to per-class
precision/recall at that decision, its three-way accuracy beside the top-class
accuracy, and one-vs-rest AUC. The config carries no
thresholds: the Evaluator adds the blessing rules of its run
(blessing/rules.py), which gate accuracy and malignant sensitivity.

The metrics are also sliced by `site` (and, when asked, by `device` and site x
device). A single-folder run's examples all carry the site `default`, whose
slice is the whole split; blessing/site_gate.py gates the site slices after TFMA.
"""

import json
from typing import List, Sequence

import tensorflow_model_analysis as tfma

from blessing import clinical_metrics
from contracts import features
from contracts import names
from contracts import serving


def _metric(class_name: str, **config) -> tfma.MetricConfig:
  return tfma.MetricConfig(class_name=class_name, config=json.dumps(config))


def _clinical_metric(name: str, class_id: int, malignant_id: int,
                     rate: str) -> tfma.MetricConfig:
  """A `ClassRateAtDecision`, which TFMA imports by the module's name."""
  return tfma.MetricConfig(
      class_name=clinical_metrics.ClassRateAtDecision.__name__,
      module=clinical_metrics.__name__,
      config=json.dumps({'name': name, 'class_id': class_id,
                         'malignant_id': malignant_id, 'rate': rate}))


def _per_class(class_names: Sequence[str], malignant: int) -> List[tfma.MetricConfig]:
  """Precision and recall of each class at the served decision, and its example count."""
  return [_clinical_metric(f'{name}_{rate}', index, malignant, rate)
          for index, name in enumerate(class_names)
          for rate in ('precision', 'recall')] + [
              _clinical_metric(f'{name}{names.CLASS_EXAMPLES_SUFFIX}', index, malignant,
                               'count')
              for index, name in enumerate(class_names)]


def slicing_specs(slice_by_device: bool) -> List[tfma.SlicingSpec]:
  """The whole split, each label, each site; with `slice_by_device` each device
  and each site x device too."""
  specs = [tfma.SlicingSpec(),
           tfma.SlicingSpec(feature_keys=[features.LABEL_KEY]),
           tfma.SlicingSpec(feature_keys=[features.SITE_KEY])]
  if slice_by_device:
    specs += [tfma.SlicingSpec(feature_keys=[features.DEVICE_KEY]),
              tfma.SlicingSpec(feature_keys=[features.SITE_KEY, features.DEVICE_KEY])]
  return specs


def create_eval_config(class_names: Sequence[str], slice_by_device: bool) -> tfma.EvalConfig:
  malignant = list(class_names).index(features.MALIGNANT_CLASS)
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name=serving.SERVING_DEFAULT,
                                  label_key=features.LABEL_KEY)],
      slicing_specs=slicing_specs(slice_by_device),
      metrics_specs=[
          tfma.MetricsSpec(metrics=[
              _metric('ExampleCount'),
              _metric('SparseCategoricalAccuracy', name=names.ACCURACY_METRIC),
              _clinical_metric(names.DECISION_ACCURACY_METRIC, malignant, malignant,
                               'accuracy'),
              _clinical_metric(names.MALIGNANT_SENSITIVITY_METRIC, malignant, malignant,
                               'recall'),
              _clinical_metric(names.MALIGNANT_SPECIFICITY_METRIC, malignant, malignant,
                               'specificity'),
              _metric('MultiClassConfusionMatrixPlot'),
              *_per_class(class_names, malignant),
          ]),
          tfma.MetricsSpec(
              binarize=tfma.BinarizationOptions(
                  class_ids={'values': list(range(len(class_names)))}),
              metrics=[_metric('AUC', name=names.AUC_METRIC), _metric('CalibrationPlot')]),
      ])
