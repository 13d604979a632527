"""The pipeline's Trainer: TFX's, with the epochs and the warm start as execution parameters.

The training configuration reaches `run_fn` as JSON in `custom_config`, and a
TFX `RuntimeParameter` cannot sit inside that JSON: its value is known only
when a run starts. So the epochs and the warm start are typed parameters of
the component (`epochs`, `warm_start`), which an orchestrator may bind to run
parameters (Kubeflow's runtime parameters) or set to plain values (local
runs), and the compiled `custom_config` has neither
(`configs.TRAINER_PARAMETERS`); the executor adds the values to the training
configuration before TFX's executor runs. `warm_start` is 1 or 0: TFX's
runtime parameters have no boolean type.

The model artifact records the training configuration it was trained with
(`names.TRAINING_CONFIG_PROPERTY`), so the model card says the epochs this run
used, not the compiled default.

With a warm start, the executor looks up the served version in
`served_model_dir` (components/warm_start.py) and hands its folder to `run_fn`
(`names.WARM_START_FROM_KEY`), which starts from its weights; the model records
where it started (`names.STARTED_FROM_PROPERTY`, `names.WARM_START_PROPERTY`).
The recorded training configuration leaves the folder out, so a run on
unchanged data still matches the served model's card.
"""

import json
from typing import Any, Dict, List, Union

from absl import logging
from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.orchestration import data_types
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils

from components import warm_start
from contracts import configs
from contracts import names

EPOCHS_KEY = 'epochs'
WARM_START_KEY = 'warm_start'
SERVED_MODEL_DIR_KEY = 'served_model_dir'


class Executor(trainer_executor.GenericExecutor):
  """TFX's GenericExecutor, run with its parameters added to the training configuration."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    custom_config = json_utils.loads(
        exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY])
    # TrainingConfig checks the value: a run parameter of 0 stops here, by name.
    custom_config = configs.with_trainer_parameters(
        custom_config, exec_properties[EPOCHS_KEY], _warm_start(exec_properties[WARM_START_KEY]))
    start = warm_start.WarmStart('', '')
    if configs.training_config_from(custom_config).warm_start:
      start = warm_start.choose(exec_properties[SERVED_MODEL_DIR_KEY], custom_config)
      logging.info('Trainer: %s', start.line)
    super().Do(input_dict, output_dict, {
        **exec_properties,
        standard_component_specs.CUSTOM_CONFIG_KEY: json_utils.dumps(
            {**custom_config, names.WARM_START_FROM_KEY: start.version_dir})})
    model = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.MODEL_KEY])
    model.set_string_custom_property(names.TRAINING_CONFIG_PROPERTY,
                                     json.dumps(custom_config, sort_keys=True))
    model.set_string_custom_property(names.STARTED_FROM_PROPERTY, start.version_dir)
    model.set_string_custom_property(names.WARM_START_PROPERTY, start.line)


def _warm_start(value: int) -> bool:
  """The `warm_start` parameter as the training configuration's flag; ConfigError otherwise."""
  if value not in (0, 1):
    raise configs.ConfigError('training.warm_start',
                              f'the run parameter warm_start is 1 or 0, got {value!r}')
  return bool(value)


class TrainerSpec(standard_component_specs.TrainerSpec):
  PARAMETERS = {
      **standard_component_specs.TrainerSpec.PARAMETERS,
      EPOCHS_KEY: ExecutionParameter(type=int),
      WARM_START_KEY: ExecutionParameter(type=int),
      SERVED_MODEL_DIR_KEY: ExecutionParameter(type=str),
  }


class Trainer(base_component.BaseComponent):
  """Trainer(examples, transform_graph, schema, run_fn, custom_config) + `epochs`,
  `warm_start` (1 or 0) and the served model directory a warm start starts from."""

  SPEC_CLASS = TrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel,
               schema: types.BaseChannel, run_fn: str,
               train_args: trainer_pb2.TrainArgs, eval_args: trainer_pb2.EvalArgs,
               custom_config: Dict[str, Any],
               epochs: Union[int, data_types.RuntimeParameter],
               warm_start: Union[int, data_types.RuntimeParameter],
               served_model_dir: str):
    super().__init__(spec=TrainerSpec(
        examples=examples,
        transform_graph=transform_graph,
        schema=schema,
        train_args=train_args,
        eval_args=eval_args,
        run_fn=run_fn,
        custom_config=json_utils.dumps(custom_config),
        epochs=epochs,
        warm_start=warm_start,
        served_model_dir=served_model_dir,
        model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun)))
