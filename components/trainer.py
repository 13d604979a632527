"""The pipeline's Trainer: TFX's, with the number of epochs as an execution parameter of its own.

The training configuration reaches `run_fn` as JSON in `custom_config`, and a
TFX `RuntimeParameter` cannot sit inside that JSON: its value is known only
when a run starts. So the epochs are a typed parameter of the component
(`epochs`), which an orchestrator may bind to a run parameter (Kubeflow's
runtime parameters) or set to a plain value (local runs), and the compiled
`custom_config` has none; the executor adds the value to the training
configuration before TFX's executor runs.

The model artifact records the training configuration it was trained with
(`names.TRAINING_CONFIG_PROPERTY`), so the model card says the epochs this run
used, not the compiled default.
"""

import json
from typing import Any, Dict, List, Union

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

from contracts import configs
from contracts import names

EPOCHS_KEY = 'epochs'


class Executor(trainer_executor.GenericExecutor):
  """TFX's GenericExecutor, run with `epochs` added to the training configuration."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    custom_config = json_utils.loads(
        exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY])
    # TrainingConfig checks the value: a run parameter of 0 stops here, by name.
    custom_config = configs.with_epochs(custom_config, exec_properties[EPOCHS_KEY])
    super().Do(input_dict, output_dict, {
        **exec_properties,
        standard_component_specs.CUSTOM_CONFIG_KEY: json_utils.dumps(custom_config)})
    artifact_utils.get_single_instance(
        output_dict[standard_component_specs.MODEL_KEY]).set_string_custom_property(
            names.TRAINING_CONFIG_PROPERTY, json.dumps(custom_config, sort_keys=True))


class TrainerSpec(standard_component_specs.TrainerSpec):
  PARAMETERS = {
      **standard_component_specs.TrainerSpec.PARAMETERS,
      EPOCHS_KEY: ExecutionParameter(type=int),
  }


class Trainer(base_component.BaseComponent):
  """Trainer(examples, transform_graph, schema, run_fn, custom_config) + `epochs`."""

  SPEC_CLASS = TrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel,
               schema: types.BaseChannel, run_fn: str,
               train_args: trainer_pb2.TrainArgs, eval_args: trainer_pb2.EvalArgs,
               custom_config: Dict[str, Any],
               epochs: Union[int, data_types.RuntimeParameter]):
    super().__init__(spec=TrainerSpec(
        examples=examples,
        transform_graph=transform_graph,
        schema=schema,
        train_args=train_args,
        eval_args=eval_args,
        run_fn=run_fn,
        custom_config=json_utils.dumps(custom_config),
        epochs=epochs,
        model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun)))
