"""Compiles the TFX pipeline into the YAML package the kfp client uploads.

TFX's KubeflowV2DagRunner builds the KFP v2 pipeline spec; what it writes is
shaped for Vertex AI (a JSON PipelineJob, or a YAML that drops the pipeline
root). For a self-hosted KFP backend the package must be YAML with the pipeline
root inside the spec, followed by the Kubernetes platform spec that places the
Trainer on the GPU pool. This module produces exactly that file, with these
corrections to what TFX builds:

* TFX copies each component's ResourceSpec into its container, except for
  FileBasedExampleGen, whose container it builds separately; resources are set
  here for every executor, so ImageExampleGen gets them too.
* FileBasedExampleGen fingerprints its input files in a pre-cache-check hook
  that only Vertex AI runs. Elsewhere KFP's cache key sees the same data root
  URI every time, and a scheduled run would reuse the examples of the first
  run, so nothing would be retrained on new images. Such a task is cached only
  when an upstream task's output parameter is among its inputs (the
  `DataFingerprint` task's fingerprint of the data, components/data_fingerprint.py),
  which KFP's cache key holds; otherwise it is never cached. `DataFingerprint`
  itself, whose only input is the data root's path, is never cached.
* TFX 1.16 names the producer of an output parameter `<node id>_task`
  (tfx/orchestration/kubeflow/v2/step_builder.py, `task_output_parameter`),
  but names each task by its node id; KFP's driver looks the producer up by
  task name in the DAG, so the name is corrected to the node id.
* TFX declares each `RuntimeParameter` as a pipeline input but drops its
  default (Vertex AI takes values from the PipelineJob it writes beside the
  spec); here the default goes into the spec, where the KFP backend reads it.
* Every container runs `orchestration.kubeflow.entrypoint`, which types the input
  artifacts the open-source backend sends untyped, before TFX's entrypoint.
* With an alert webhook, TFX puts every task into a sub-DAG (`tfx-dag`)
  followed by the exit handler task, but leaves the sub-DAG without the
  pipeline parameters its tasks read; KFP resolves a task's
  `componentInputParameter` against its own DAG's inputs, so the sub-DAG
  declares them here and the root passes them on.

What the target backend version cannot run (`KubeflowConfig.kfp_version`,
backends.py) is refused before anything is compiled. For Vertex AI
(`KubeflowConfig.target`) the package is the pipeline spec alone: Vertex's
SDK loads one YAML document (a second one is a `ComposerError`), reads no
Kubernetes platform spec, and takes the GPU as an accelerator type
(`NVIDIA_TESLA_T4`, `NVIDIA_L4`, ...) instead of a Kubernetes resource.
"""
import os
from typing import Tuple

from google.protobuf import json_format
from google.protobuf import struct_pb2
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx
from tfx.orchestration import data_types
from tfx.orchestration.kubeflow import utils as kubeflow_utils
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
import yaml

from components import data_fingerprint
from components import failure_alert
from orchestration.kubeflow import backends
from orchestration.kubeflow import configs as kubeflow_configs
from orchestration.kubeflow import entrypoint as kubeflow_entrypoint
from orchestration.kubeflow import platform as kubeflow_platform

_DeploymentConfig = pipeline_spec_pb2.PipelineDeploymentConfig
# The KFP v2 backend reads schema 2.1 (parameterType); 2.0 is Vertex's legacy form.
_USE_PIPELINE_SPEC_2_1 = True
# Every task's container runs orchestration/kubeflow/entrypoint.py, which completes
# what the open-source backend leaves out, then runs TFX's entrypoint.
ENTRYPOINT_COMMAND = ('python', '-m', kubeflow_entrypoint.__name__)
# What TFX 1.16 appends to the producer's node id in a `taskOutputParameter`.
_TFX_PRODUCER_SUFFIX = '_task'


def compile_specs(pipeline: tfx.dsl.Pipeline,
                  config: kubeflow_configs.KubeflowConfig
                  ) -> Tuple[pipeline_spec_pb2.PipelineSpec, pipeline_spec_pb2.PlatformSpec]:
  """The pipeline spec and the Kubernetes platform spec, with resources applied.

  Raises backends.BackendVersionError when the target version cannot run the package.
  """
  if config.alert_webhook and config.target == kubeflow_configs.KFP_TARGET:
    backends.require(backends.EXIT_HANDLER, config.kfp_version)
  kubeflow_platform.apply_resources(pipeline, config)
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
          default_image=config.image,
          default_commands=list(ENTRYPOINT_COMMAND),
          use_pipeline_spec_2_1=_USE_PIPELINE_SPEC_2_1))
  if config.alert_webhook:
    runner.set_exit_handler(failure_alert.FailureAlert(
        final_status=tfx.orchestration.experimental.FinalStatusStr(),
        pipeline_name=pipeline.pipeline_info.pipeline_name,
        webhook_url=config.alert_webhook).with_id(kubeflow_configs.ALERT_TASK_ID))
  pipeline_job = runner.run(pipeline, write_out=False)
  pipeline_spec = json_format.ParseDict(pipeline_job['pipelineSpec'],
                                        pipeline_spec_pb2.PipelineSpec())
  pipeline_spec.default_pipeline_root = pipeline.pipeline_info.pipeline_root
  _correct_for_kfp_backend(pipeline_spec, pipeline, config)
  _declare_parameter_defaults(pipeline_spec, pipeline)
  _type_final_status_inputs(pipeline_spec)
  if config.target == kubeflow_configs.VERTEX_TARGET:
    return pipeline_spec, pipeline_spec_pb2.PlatformSpec()
  trainer_executor = pipeline_spec.components[kubeflow_configs.TRAINER_ID].executor_label
  return pipeline_spec, kubeflow_platform.kubernetes_platform_spec(
      sorted(pipeline_spec.deployment_spec['executors'].keys()), trainer_executor, config)


def pipeline_dag(pipeline_spec: pipeline_spec_pb2.PipelineSpec) -> pipeline_spec_pb2.DagSpec:
  """The DAG that holds the pipeline's tasks: the root, or TFX's sub-DAG beside an exit handler."""
  if kubeflow_utils.TFX_DAG_NAME in pipeline_spec.components:
    return pipeline_spec.components[kubeflow_utils.TFX_DAG_NAME].dag
  return pipeline_spec.root.dag


def _correct_for_kfp_backend(pipeline_spec: pipeline_spec_pb2.PipelineSpec,
                             pipeline: tfx.dsl.Pipeline,
                             config: kubeflow_configs.KubeflowConfig) -> None:
  """Resources on every container; caching only where the cache key sees the data.

  The Trainer's container is also told how many GPUs it asked for, so that it
  stops rather than training on the CPU when the node shows none. With a
  credentials secret, every container (the exit handler's too) names its key file.
  """
  deployment = json_format.ParseDict(
      json_format.MessageToDict(pipeline_spec.deployment_spec), _DeploymentConfig())
  for executor in deployment.executors.values():
    for name, value in kubeflow_platform.credentials_env(config.credentials_secret).items():
      executor.container.env.add(name=name, value=value)
  for component in pipeline.components:
    container = deployment.executors[
        pipeline_spec.components[component.id].executor_label].container
    container.resources.CopyFrom(component.platform_config)
    if component.id == kubeflow_configs.TRAINER_ID and config.gpu.count > 0:
      container.args.insert(0, str(config.gpu.count))
      container.args.insert(0, kubeflow_entrypoint.REQUIRE_GPUS_FLAG)
    task = pipeline_dag(pipeline_spec).tasks[component.id]
    _name_output_parameter_producers(task)
    keyed_on_data = any(parameter.HasField('task_output_parameter')
                        for parameter in task.inputs.parameters.values())
    if (isinstance(component, data_fingerprint.DataFingerprint)
        or (container.lifecycle.HasField('pre_cache_check') and not keyed_on_data)):
      task.caching_options.enable_cache = False
  pipeline_spec.deployment_spec.Clear()
  pipeline_spec.deployment_spec.update(json_format.MessageToDict(deployment))


def _name_output_parameter_producers(task: pipeline_spec_pb2.PipelineTaskSpec) -> None:
  """Each upstream output parameter's producer named as its task is (see the module doc)."""
  for parameter in task.inputs.parameters.values():
    if parameter.HasField('task_output_parameter'):
      producer = parameter.task_output_parameter
      producer.producer_task = producer.producer_task.removesuffix(_TFX_PRODUCER_SUFFIX)


def _declare_parameter_defaults(pipeline_spec: pipeline_spec_pb2.PipelineSpec,
                                pipeline: tfx.dsl.Pipeline) -> None:
  """Each runtime parameter's default in the root inputs, and optional to set.

  A sub-DAG of the tasks declares the same inputs and gets them from the root.
  """
  nested = kubeflow_utils.TFX_DAG_NAME in pipeline_spec.components
  for component in pipeline.components:
    for value in component.exec_properties.values():
      if isinstance(value, data_types.RuntimeParameter) and value.default is not None:
        spec = pipeline_spec.root.input_definitions.parameters[value.name]
        spec.default_value.CopyFrom(json_format.ParseDict(value.default, struct_pb2.Value()))
        spec.is_optional = True
        if nested:
          pipeline_spec.components[kubeflow_utils.TFX_DAG_NAME].input_definitions.parameters[
              value.name].CopyFrom(spec)
          pipeline_spec.root.dag.tasks[kubeflow_utils.TFX_DAG_NAME].inputs.parameters[
              value.name].component_input_parameter = value.name


def _type_final_status_inputs(pipeline_spec: pipeline_spec_pb2.PipelineSpec) -> None:
  """An exit handler's final status input typed TASK_FINAL_STATUS, as the kfp SDK types it.

  TFX declares it STRING (Vertex AI's form); the open-source backend resolves
  it to a struct. TFX's own parser in the container still reads the STRING
  its arguments declare; the entrypoint hands it the struct as JSON.
  """
  for task in pipeline_spec.root.dag.tasks.values():
    for name, parameter in task.inputs.parameters.items():
      if parameter.HasField('task_final_status'):
        pipeline_spec.components[task.component_ref.name].input_definitions.parameters[
            name].parameter_type = pipeline_spec_pb2.ParameterType.TASK_FINAL_STATUS


def compile_package(pipeline: tfx.dsl.Pipeline,
                    config: kubeflow_configs.KubeflowConfig, path: str) -> None:
  """Writes one YAML document per spec, in the order the kfp client reads them."""
  pipeline_spec, platform_spec = compile_specs(pipeline, config)
  documents = [json_format.MessageToDict(pipeline_spec)]
  if platform_spec.platforms:
    documents.append(json_format.MessageToDict(platform_spec))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w') as f:
    yaml.safe_dump_all(documents, f, sort_keys=True)
