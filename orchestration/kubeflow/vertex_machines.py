"""Vertex AI machine types for the Trainer, as the CPU and memory limits that select them.

A KFP pipeline spec (kfp-pipeline-spec 0.2.2, the lock's) has no machine type
field: a container's ResourceSpec holds CPU and memory limits and requests
and an accelerator (type, count). Vertex AI Pipelines runs each task as a
CustomJob on the supported machine type that is the closest match to those
limits and the accelerator, or on e2-standard-4 when none are set
(cloud.google.com/vertex-ai/docs/pipelines/machine-types). Naming a machine
type therefore means asking for its whole shape: its vCPUs, its memory and
its GPUs. A CustomJob takes at most 96 vCPUs and 624 GB, so larger machines
are not offered.

GPU machine families (cloud.google.com/compute/docs/gpus): N1 takes T4,
V100, P100 or P4 GPUs in any of the counts below; G2 (L4) and A2 (A100) have
a fixed GPU count per machine type.
"""

import dataclasses
from typing import Dict, Tuple

N1_GPUS = ('NVIDIA_TESLA_T4', 'NVIDIA_TESLA_V100', 'NVIDIA_TESLA_P100', 'NVIDIA_TESLA_P4')
N1_GPU_COUNTS = (1, 2, 4, 8)


@dataclasses.dataclass(frozen=True)
class MachineType:
  """A Compute Engine machine type: vCPUs, memory (GB) and the GPUs it takes."""
  name: str
  cpu: int
  memory_gb: float
  accelerators: Tuple[str, ...]
  # The GPU counts it runs with (one for the fixed-count families).
  gpu_counts: Tuple[int, ...]


def _n1(kind: str, gb_per_cpu: float) -> Dict[str, MachineType]:
  return {f'n1-{kind}-{cpu}': MachineType(f'n1-{kind}-{cpu}', cpu, gb_per_cpu * cpu,
                                          N1_GPUS, N1_GPU_COUNTS)
          for cpu in (4, 8, 16, 32)}


MACHINE_TYPES: Dict[str, MachineType] = {
    **_n1('standard', 3.75),
    **_n1('highmem', 6.5),
    **{name: MachineType(name, cpu, memory_gb, ('NVIDIA_L4',), (gpus,))
       for name, cpu, memory_gb, gpus in (
           ('g2-standard-4', 4, 16, 1), ('g2-standard-8', 8, 32, 1),
           ('g2-standard-12', 12, 48, 1), ('g2-standard-16', 16, 64, 1),
           ('g2-standard-24', 24, 96, 2), ('g2-standard-32', 32, 128, 1),
           ('g2-standard-48', 48, 192, 4), ('g2-standard-96', 96, 384, 8))},
    **{name: MachineType(name, cpu, memory_gb, ('NVIDIA_TESLA_A100',), (gpus,))
       for name, cpu, memory_gb, gpus in (
           ('a2-highgpu-1g', 12, 85, 1), ('a2-highgpu-2g', 24, 170, 2),
           ('a2-highgpu-4g', 48, 340, 4))},
    **{name: MachineType(name, cpu, memory_gb, ('NVIDIA_A100_80GB',), (gpus,))
       for name, cpu, memory_gb, gpus in (
           ('a2-ultragpu-1g', 12, 170, 1), ('a2-ultragpu-2g', 24, 340, 2))},
}


class MachineTypeError(ValueError):
  """A machine type that cannot carry the requested GPUs; the message is one line."""


def trainer_machine(name: str, accelerator: str, gpus: int) -> MachineType:
  """The machine type `name`, checked against the Trainer's accelerator and GPU count."""
  if name not in MACHINE_TYPES:
    raise MachineTypeError(f'--machine-type takes one of {", ".join(MACHINE_TYPES)}, '
                           f'got {name!r}')
  machine = MACHINE_TYPES[name]
  if gpus == 0:
    raise MachineTypeError(f'--machine-type {name} is a GPU machine; with --gpus 0 '
                           'set --trainer-cpu and --trainer-memory-gb instead')
  if accelerator not in machine.accelerators:
    raise MachineTypeError(f'--machine-type {name} takes {" or ".join(machine.accelerators)}, '
                           f'not --accelerator-type {accelerator}')
  if gpus not in machine.gpu_counts:
    raise MachineTypeError(f'--machine-type {name} runs with '
                           f'{" or ".join(map(str, machine.gpu_counts))} GPU(s), not --gpus {gpus}')
  return machine
