"""What Kubeflow Pipelines needs beyond `PipelineConfig`: image, pods, GPU pool.

The DAG is the one `create_pipeline` builds for every runner; these settings
only say where its containers run. Memory is in decimal gigabytes and CPU in
cores, the units of KFP's ResourceSpec.
"""

import dataclasses
from typing import Tuple

from contracts import names
from orchestration.kubeflow import backends

# KFP v2 names must match [a-z0-9][a-z0-9-]*, so the underscore becomes a dash.
PIPELINE_NAME = names.PIPELINE_NAME.replace('_', '-')

# Where the Dockerfile copies the project; the compiled spec points here for
# files that ship with the code, such as the curated schema.
IMAGE_PROJECT_DIR = '/pipeline'
IMAGE_SCHEMA_FILE = f'{IMAGE_PROJECT_DIR}/schema/schema.pbtxt'

# The exit handler task that reports a failed run (components/failure_alert.py).
ALERT_TASK_ID = 'FailureAlert'

# The component that gets the GPUs; every other one asks for CPU and memory only.
TRAINER_ID = names.TRAINER

# The extended resource NVIDIA's device plugin advertises on GPU nodes.
NVIDIA_GPU_RESOURCE = 'nvidia.com/gpu'
# The node label NVIDIA's GPU Feature Discovery (GPU operator) sets to the model.
GPU_PRODUCT_LABEL = 'nvidia.com/gpu.product'

TOLERATION_EFFECTS = ('NoSchedule', 'PreferNoSchedule', 'NoExecute')

# Where the package runs: a self-hosted KFP backend (pipeline spec and
# Kubernetes platform spec), or Vertex AI Pipelines (the pipeline spec alone:
# its SDK reads one YAML document, and names GPUs by accelerator type).
KFP_TARGET = 'kfp'
VERTEX_TARGET = 'vertex'
TARGETS = (KFP_TARGET, VERTEX_TARGET)
DEFAULT_VERTEX_ACCELERATOR = 'NVIDIA_TESLA_T4'

# Where a Kubernetes secret with a service-account key is mounted in every
# task's pod, and the key file in it that GOOGLE_APPLICATION_CREDENTIALS names.
CREDENTIALS_MOUNT_PATH = '/var/secrets/google'
CREDENTIALS_KEY_FILE = 'key.json'
CREDENTIALS_ENV = 'GOOGLE_APPLICATION_CREDENTIALS'


@dataclasses.dataclass(frozen=True)
class Resources:
  """CPU cores and memory (GB) a component's pod requests, and is limited to."""
  cpu: float
  memory_gb: float


@dataclasses.dataclass(frozen=True)
class Toleration:
  """A Kubernetes toleration; no `value` means operator Exists."""
  key: str
  effect: str = 'NoSchedule'
  value: str = ''


@dataclasses.dataclass(frozen=True)
class GpuPool:
  """How the Trainer reaches the GPU nodes.

  The resource request alone lets the scheduler place the pod on a node with
  free GPUs; the node selector picks a GPU model or node pool, and the
  tolerations let the pod onto nodes tainted to keep other work away.
  """
  count: int = 1
  # Kubernetes: the extended resource; Vertex AI: the accelerator type.
  resource: str = NVIDIA_GPU_RESOURCE
  node_selector: Tuple[Tuple[str, str], ...] = ()
  tolerations: Tuple[Toleration, ...] = (Toleration(key=NVIDIA_GPU_RESOURCE),)


@dataclasses.dataclass(frozen=True)
class KubeflowConfig:
  """Everything the Kubeflow runner adds to a `PipelineConfig`."""
  image: str
  component_resources: Resources = Resources(cpu=2, memory_gb=8)
  trainer_resources: Resources = Resources(cpu=4, memory_gb=16)
  gpu: GpuPool = GpuPool()
  # (component id, resources) for components that need other sizes than the
  # two above, e.g. a Transform analyzing more data.
  resources_by_component: Tuple[Tuple[str, Resources], ...] = ()
  # Where a run that did not succeed is reported (a JSON POST); empty: no
  # exit handler task is compiled (KFP backends before 2.14 reject one).
  alert_webhook: str = ''
  # A Kubernetes secret holding a service-account key as `key.json`, mounted in
  # every task for the launcher, TensorFlow and google-cloud-storage; empty: the
  # pods' own identity (Workload Identity on GKE).
  credentials_secret: str = ''
  # The KFP backend version the package must run on (backends.py).
  kfp_version: str = backends.DEFAULT_VERSION
  target: str = KFP_TARGET
