"""An Evaluator whose baseline is the model TF Serving serves now.

The no-regression check must compare against what is in service. TFX finds the
baseline with a Resolver node (LatestBlessedModelStrategy), which the open-source
Kubeflow Pipelines v2 backend rejects. The serving directory is the ground truth
on every orchestrator: this Evaluator takes the version served as `stable` there
(serving/serving_dir.py) as its baseline, and evaluates without one
(thresholds only) when nothing is served yet.
The baseline is copied into the evaluation artifact, so the record says exactly
which model the candidate was compared with.

The blessing rules (blessing/rules.py) are execution parameters of their own
(`min_accuracy`, `min_malignant_recall`, `regression_tolerance`,
`min_site_malignant_examples`) and the compiled `eval_config` has no
thresholds: a TFX `RuntimeParameter` cannot sit inside the eval config's JSON,
and as parameters an orchestrator can bind the floors and the tolerance to run
parameters (Kubeflow) or set plain values (local runs). The executor adds the
thresholds to the eval config before TFMA runs, and records the rules on the
blessing.

After TFMA the per-site gate (blessing/site_gate.py) judges each site's
slice; when a site fails, the blessing TFMA gave is withdrawn (NOT_BLESSED,
`blessed` 0), so TFX's Pusher, which reads only the blessing, pushes nothing.
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Sequence, Union

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

from blessing import evaluation_metrics
from blessing import rules as rules_lib
from blessing import site_gate
from contracts import features
from contracts import names
from serving import serving_dir

SERVING_MODEL_DIR_KEY = 'serving_model_dir'
CLASS_NAMES_KEY = 'class_names'
_BASELINE_SUBDIR = 'served_baseline'

FloatParameter = Union[float, data_types.RuntimeParameter]
# The execution parameters that hold the blessing rules: BlessingRules' fields.
_RULE_TYPES = {field.name: field.type for field in dataclasses.fields(rules_lib.BlessingRules)}


class Executor(evaluator_executor.Executor):
  """TFX's Evaluator executor, given the served model as baseline."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    # BlessingRules checks the values as the configuration checks them.
    rules = rules_lib.BlessingRules(**{key: exec_properties[key] for key in _RULE_TYPES})
    eval_config = proto_utils.json_to_proto(
        exec_properties[standard_component_specs.EVAL_CONFIG_KEY], tfma.EvalConfig())
    exec_properties = {
        **exec_properties,
        standard_component_specs.EVAL_CONFIG_KEY: proto_utils.proto_to_json(
            rules_lib.gated_eval_config(eval_config, rules))}
    model_base_dir = exec_properties[SERVING_MODEL_DIR_KEY]
    served = serving_dir.served_model_path(model_base_dir)
    blessing = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.BLESSING_KEY])
    rules_lib.record(rules, blessing)
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
    _gate_sites(artifact_utils.get_single_uri(
        output_dict[standard_component_specs.EVALUATION_KEY]), blessing, rules,
                json.loads(exec_properties[CLASS_NAMES_KEY]), has_baseline=served is not None)


def _gate_sites(evaluation_uri: str, blessing: types.Artifact,
                rules: rules_lib.BlessingRules, class_names: Sequence[str],
                has_baseline: bool) -> None:
  """Writes the per-site verdicts; withdraws the blessing when a site fails."""
  candidate = evaluation_metrics.site_metrics(
      evaluation_uri, class_names, features.SITE_KEY,
      evaluation_metrics.CANDIDATE_MODEL if has_baseline else None)
  baseline = evaluation_metrics.site_metrics(
      evaluation_uri, class_names, features.SITE_KEY,
      evaluation_metrics.BASELINE_MODEL) if has_baseline else None
  result = site_gate.judge(candidate, baseline, rules)
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
      # The class names in the order of the scores, as a JSON list.
      CLASS_NAMES_KEY: ExecutionParameter(type=str),
      **{key: ExecutionParameter(type=kind) for key, kind in _RULE_TYPES.items()},
  }


class ServedBaselineEvaluator(base_beam_component.BaseBeamComponent):
  """Evaluator(examples, model, eval_config) + the served model as baseline + the
  blessing rules, which add the thresholds to `eval_config` and are the site gate's.
  """

  SPEC_CLASS = ServedBaselineEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

  def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
               eval_config: tfma.EvalConfig, example_splits: Sequence[str],
               serving_model_dir: str, class_names: Sequence[str],
               min_accuracy: FloatParameter, min_malignant_recall: FloatParameter,
               regression_tolerance: FloatParameter, min_site_malignant_examples: int):
    super().__init__(spec=ServedBaselineEvaluatorSpec(
        examples=examples,
        model=model,
        eval_config=eval_config,
        example_splits=json_utils.dumps(list(example_splits)),
        serving_model_dir=serving_model_dir,
        class_names=json.dumps(list(class_names)),
        min_accuracy=min_accuracy,
        min_malignant_recall=min_malignant_recall,
        regression_tolerance=regression_tolerance,
        min_site_malignant_examples=min_site_malignant_examples,
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
