"""An Evaluator whose baseline is the model TF Serving serves now.

The no-regression check must compare against what is in service. TFX finds the
baseline with a Resolver node (LatestBlessedModelStrategy), which the open-source
Kubeflow Pipelines v2 backend rejects. The serving directory is the ground truth
on every orchestrator: this Evaluator takes the version served as `stable` there
(serving/serving_dir.py) as its baseline, and evaluates without one
(thresholds only) when nothing is served yet.
The baseline is copied into the evaluation artifact, so the record says exactly
which model the candidate was compared with.

The blessing floors and the regression tolerance are execution parameters of
their own (`min_accuracy`, `min_malignant_recall`, `regression_tolerance`),
not only values inside `eval_config`: a TFX `RuntimeParameter` cannot sit
inside the eval config's JSON, and as parameters an orchestrator can bind them
to run parameters (Kubeflow) or set plain values (local runs). The executor
writes them into the eval config's thresholds before TFMA runs, and records
them on the blessing (`names.BLESSING_RULES_PROPERTY`).

After TFMA the per-site gate (components/site_gate.py) judges each site's
slice; when a site fails, the blessing TFMA gave is withdrawn (NOT_BLESSED,
`blessed` 0), so TFX's Pusher, which reads only the blessing, pushes nothing.
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Mapping, Sequence, Union

from absl import logging
import tensorflow_model_analysis as tfma
from tfx import types
from tfx.components.evaluator import constants as evaluator_constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.orchestration import data_types
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import io_utils
from tfx.utils import json_utils
from tfx.utils import path_utils
from tfx.utils import proto_utils

from components import evaluation_metrics
from components import site_gate
from contracts import configs
from contracts import features
from contracts import names
from serving import serving_dir

SERVING_MODEL_DIR_KEY = 'serving_model_dir'
MIN_ACCURACY_KEY = 'min_accuracy'
MIN_MALIGNANT_RECALL_KEY = 'min_malignant_recall'
REGRESSION_TOLERANCE_KEY = 'regression_tolerance'
SITE_GATE_KEY = 'site_gate'
_BASELINE_SUBDIR = 'served_baseline'
# Below any tolerance: "not worse than the served model" must pass an equal score.
_CHANGE_EPSILON = 1e-9

FloatParameter = Union[float, data_types.RuntimeParameter]


def blessing_thresholds(lower_bound: float,
                        tolerance: float) -> List[tfma.PerSliceMetricThreshold]:
  """A floor and a no-regression rule, on the whole test split only.

  Per-label slices cannot carry them: a malignant-only slice has no specificity.
  TFX ignores the change threshold when there is no baseline.
  """
  return [tfma.PerSliceMetricThreshold(
      slicing_specs=[tfma.SlicingSpec()],
      threshold=tfma.MetricThreshold(
          value_threshold=tfma.GenericValueThreshold(lower_bound={'value': lower_bound}),
          change_threshold=tfma.GenericChangeThreshold(
              direction=tfma.MetricDirection.HIGHER_IS_BETTER,
              absolute={'value': -tolerance - _CHANGE_EPSILON})))]


def metric_name(metric: tfma.MetricConfig) -> str:
  """The name TFMA reports a configured metric under."""
  return json.loads(metric.config or '{}').get('name', metric.class_name)


def floors_of(rules: configs.EvaluationConfig) -> Dict[str, float]:
  """Metric name -> the lower bound a candidate must reach."""
  return {names.ACCURACY_METRIC: rules.min_accuracy,
          names.MALIGNANT_SENSITIVITY_METRIC: rules.min_malignant_recall}


def with_blessing_rules(eval_config: tfma.EvalConfig, floors: Mapping[str, float],
                        tolerance: float) -> tfma.EvalConfig:
  """`eval_config` with each floored metric gated by `blessing_thresholds`.

  Raises ValueError when a floor names a metric the config does not compute.
  """
  gated = tfma.EvalConfig()
  gated.CopyFrom(eval_config)
  found = set()
  for spec in gated.metrics_specs:
    for metric in spec.metrics:
      name = metric_name(metric)
      if name in floors:
        del metric.per_slice_thresholds[:]
        metric.per_slice_thresholds.extend(blessing_thresholds(floors[name], tolerance))
        found.add(name)
  missing = sorted(set(floors) - found)
  if missing:
    raise ValueError(f'The eval config computes no metric named {", ".join(missing)}, '
                     'so its floor cannot be applied.')
  return gated


def rules_from(exec_properties: Mapping[str, Any]) -> configs.EvaluationConfig:
  """The run's floors and tolerance, checked as the configuration checks them."""
  return dataclasses.replace(
      configs.EvaluationConfig(),
      min_accuracy=exec_properties[MIN_ACCURACY_KEY],
      min_malignant_recall=exec_properties[MIN_MALIGNANT_RECALL_KEY],
      regression_tolerance=exec_properties[REGRESSION_TOLERANCE_KEY])


def recorded_rules(blessing: types.Artifact) -> configs.EvaluationConfig:
  """The floors and tolerance the Evaluator applied, from its blessing."""
  return rules_from(json.loads(
      blessing.get_string_custom_property(names.BLESSING_RULES_PROPERTY)))


class Executor(evaluator_executor.Executor):
  """TFX's Evaluator executor, given the served model as baseline."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    rules = rules_from(exec_properties)
    eval_config = proto_utils.json_to_proto(
        exec_properties[standard_component_specs.EVAL_CONFIG_KEY], tfma.EvalConfig())
    exec_properties = {
        **exec_properties,
        standard_component_specs.EVAL_CONFIG_KEY: proto_utils.proto_to_json(
            with_blessing_rules(eval_config, floors_of(rules),
                                rules.regression_tolerance))}
    model_base_dir = exec_properties[SERVING_MODEL_DIR_KEY]
    served = serving_dir.served_model_path(model_base_dir)
    blessing = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.BLESSING_KEY])
    blessing.set_string_custom_property(names.BLESSING_RULES_PROPERTY, json.dumps({
        MIN_ACCURACY_KEY: rules.min_accuracy,
        MIN_MALIGNANT_RECALL_KEY: rules.min_malignant_recall,
        REGRESSION_TOLERANCE_KEY: rules.regression_tolerance}, sort_keys=True))
    if served is None:
      logging.info('No model is served under %s yet: evaluating against the '
                   'thresholds only.', model_base_dir)
      blessing.set_string_custom_property(names.BASELINE_VERSION_PROPERTY, '')
    else:
      baseline = standard_artifacts.Model()
      baseline.uri = os.path.join(
          artifact_utils.get_single_uri(output_dict[standard_component_specs.EVALUATION_KEY]),
          _BASELINE_SUBDIR)
      io_utils.copy_dir(served, path_utils.serving_model_dir(baseline.uri))
      version = os.path.basename(served)
      logging.info('Baseline: served model version %s from %s.', version, served)
      blessing.set_string_custom_property(names.BASELINE_VERSION_PROPERTY, version)
      input_dict = {**input_dict, standard_component_specs.BASELINE_MODEL_KEY: [baseline]}
    super().Do(input_dict, output_dict, exec_properties)
    # TFX records the baseline's ML Metadata id, which the served copy does not
    # have (0); Kubeflow's entrypoint would look that id up among the task's
    # inputs and fail. The served version above says which model it was.
    blessing.mlmd_artifact.custom_properties.pop(
        evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, None)
    # The run's floor and tolerance, as TFMA applied them overall.
    gate_config = dataclasses.replace(
        site_gate.SiteGateConfig.from_json(exec_properties[SITE_GATE_KEY]),
        min_malignant_recall=rules.min_malignant_recall,
        regression_tolerance=rules.regression_tolerance)
    _gate_sites(artifact_utils.get_single_uri(
        output_dict[standard_component_specs.EVALUATION_KEY]), blessing, gate_config,
                has_baseline=served is not None)


def _gate_sites(evaluation_uri: str, blessing: types.Artifact,
                config: site_gate.SiteGateConfig, has_baseline: bool) -> None:
  """Writes the per-site verdicts; withdraws the blessing when a site fails."""
  candidate = evaluation_metrics.site_metrics(
      evaluation_uri, config.class_names, features.SITE_KEY,
      evaluation_metrics.CANDIDATE_MODEL if has_baseline else None)
  baseline = evaluation_metrics.site_metrics(
      evaluation_uri, config.class_names, features.SITE_KEY,
      evaluation_metrics.BASELINE_MODEL) if has_baseline else None
  result = site_gate.judge(candidate, baseline, config)
  site_gate.write(result, evaluation_uri)
  if result.passed:
    return
  logging.info('Per-site gate: %s', '; '.join(result.failures))
  if blessing.get_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY):
    blessed_file = os.path.join(blessing.uri, evaluator_constants.BLESSED_FILE_NAME)
    if fileio.exists(blessed_file):
      fileio.remove(blessed_file)
    io_utils.write_string_file(
        os.path.join(blessing.uri, evaluator_constants.NOT_BLESSED_FILE_NAME), '')
    blessing.set_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY,
                                     evaluator_constants.NOT_BLESSED_VALUE)
    blessing.set_string_custom_property(
        evaluator_constants.ARTIFACT_PROPERTY_BLESSING_MESSAGE_KEY,
        'The thresholds on the whole split passed; the blessing is withheld by the '
        'per-site gate: ' + '; '.join(result.failures))


class ServedBaselineEvaluatorSpec(standard_component_specs.EvaluatorSpec):
  PARAMETERS = {
      **standard_component_specs.EvaluatorSpec.PARAMETERS,
      SERVING_MODEL_DIR_KEY: ExecutionParameter(type=str),
      MIN_ACCURACY_KEY: ExecutionParameter(type=float),
      MIN_MALIGNANT_RECALL_KEY: ExecutionParameter(type=float),
      REGRESSION_TOLERANCE_KEY: ExecutionParameter(type=float),
      # site_gate.SiteGateConfig as JSON.
      SITE_GATE_KEY: ExecutionParameter(type=str),
  }


class ServedBaselineEvaluator(base_beam_component.BaseBeamComponent):
  """Evaluator(examples, model, eval_config) + the served model as baseline + the site gate.

  The floors and the tolerance replace the thresholds of the floored metrics
  (`floors_of`) in `eval_config`, and are the site gate's too.
  """

  SPEC_CLASS = ServedBaselineEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

  def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
               eval_config: tfma.EvalConfig, example_splits: Sequence[str],
               serving_model_dir: str, min_accuracy: FloatParameter,
               min_malignant_recall: FloatParameter, regression_tolerance: FloatParameter,
               site_gate_config: site_gate.SiteGateConfig):
    super().__init__(spec=ServedBaselineEvaluatorSpec(
        examples=examples,
        model=model,
        eval_config=eval_config,
        example_splits=json_utils.dumps(list(example_splits)),
        serving_model_dir=serving_model_dir,
        min_accuracy=min_accuracy,
        min_malignant_recall=min_malignant_recall,
        regression_tolerance=regression_tolerance,
        site_gate=site_gate_config.to_json(),
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
