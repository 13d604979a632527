"""Where each component's pod runs on Kubernetes: resources, GPU node pool, credentials.

Two places in a compiled KFP v2 file carry this. Resources (CPU, memory, GPU
count) are part of the container spec, and TFX fills them from each
component's `platform_config`. Node selectors, tolerations and secret volumes
are not in TFX's vocabulary: KFP reads them from the Kubernetes section of the
platform spec, the YAML document after the pipeline spec, keyed by executor
label (KubernetesExecutorConfig; the driver applies `secretAsVolume` with
`secretName` from 2.0 and `tolerations` from 2.1, driver/driver.go and, from
2.14, driver/k8s.go in kubeflow/pipelines).
"""

from typing import Any, Dict, Optional, Sequence

from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx

from orchestration.kubeflow import configs as kubeflow_configs

_ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec

KUBERNETES_PLATFORM = 'kubernetes'


def resource_spec(resources: kubeflow_configs.Resources,
                  gpu: Optional[kubeflow_configs.GpuPool] = None) -> _ResourceSpec:
  """Requests equal to limits: a pod is never throttled below what it asked for."""
  spec = _ResourceSpec(cpu_request=resources.cpu, cpu_limit=resources.cpu,
                       memory_request=resources.memory_gb,
                       memory_limit=resources.memory_gb)
  if gpu is not None and gpu.count > 0:
    # Open-source KFP turns the accelerator type into the resource name.
    spec.accelerator.type = gpu.resource
    spec.accelerator.count = gpu.count
  return spec


class PlatformConfigError(ValueError):
  """Settings that name components the pipeline does not have."""


def apply_resources(pipeline: tfx.dsl.Pipeline,
                    config: kubeflow_configs.KubeflowConfig) -> None:
  """Gives the Trainer its GPUs and every component its CPU and memory."""
  component_ids = [c.id for c in pipeline.components]
  resources_by_component = dict(config.resources_by_component)
  unknown = sorted(set(resources_by_component) - set(component_ids))
  if kubeflow_configs.TRAINER_ID not in component_ids:
    unknown.insert(0, kubeflow_configs.TRAINER_ID)
  if unknown:
    raise PlatformConfigError(
        f'The pipeline has no component {", ".join(unknown)}; '
        f'its components are {", ".join(component_ids)}')
  for component in pipeline.components:
    is_trainer = component.id == kubeflow_configs.TRAINER_ID
    resources = resources_by_component.get(
        component.id,
        config.trainer_resources if is_trainer else config.component_resources)
    component.with_platform_config(
        resource_spec(resources, config.gpu if is_trainer else None))


def _gpu_executor_config(gpu: kubeflow_configs.GpuPool) -> Dict[str, Any]:
  """KFP's KubernetesExecutorConfig of the GPU pool, as the JSON its backend reads."""
  executor_config: Dict[str, Any] = {}
  if gpu.count <= 0:
    return executor_config
  if gpu.node_selector:
    executor_config['nodeSelector'] = {'labels': dict(gpu.node_selector)}
  if gpu.tolerations:
    executor_config['tolerations'] = [
        {'key': t.key, 'operator': 'Equal', 'value': t.value, 'effect': t.effect}
        if t.value else {'key': t.key, 'operator': 'Exists', 'effect': t.effect}
        for t in gpu.tolerations]
  return executor_config


def _credentials_executor_config(secret: str) -> Dict[str, Any]:
  """The service-account key secret as a volume; the container's env names the key file."""
  if not secret:
    return {}
  return {'secretAsVolume': [{'secretName': secret,
                              'mountPath': kubeflow_configs.CREDENTIALS_MOUNT_PATH}]}


def credentials_env(secret: str) -> Dict[str, str]:
  """The environment every task's container gets with a credentials secret."""
  if not secret:
    return {}
  return {kubeflow_configs.CREDENTIALS_ENV:
          f'{kubeflow_configs.CREDENTIALS_MOUNT_PATH}/{kubeflow_configs.CREDENTIALS_KEY_FILE}'}


def kubernetes_platform_spec(executor_labels: Sequence[str], trainer_executor_label: str,
                             config: kubeflow_configs.KubeflowConfig
                             ) -> pipeline_spec_pb2.PlatformSpec:
  """The GPU pool's node selector and tolerations for the Trainer; the credentials for all."""
  platform_spec = pipeline_spec_pb2.PlatformSpec()
  for label in executor_labels:
    executor_config = _credentials_executor_config(config.credentials_secret)
    if label == trainer_executor_label:
      executor_config.update(_gpu_executor_config(config.gpu))
    if executor_config:
      platform_spec.platforms[KUBERNETES_PLATFORM].deployment_spec.executors[
          label].update(executor_config)
  return platform_spec
