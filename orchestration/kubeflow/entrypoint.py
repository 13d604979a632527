"""The container entrypoint of every compiled task: TFX's, after corrections and a check.

    python -m orchestration.kubeflow.entrypoint [--require_gpus N] <TFX's arguments>

The compiled spec calls this module instead of TFX's
`kubeflow_v2_run_executor`, which it then runs unchanged. Before that:

* Input artifact types are completed from the task's own input spec. The
  open-source KFP driver hands each task its upstream artifacts with
  `type: {instanceSchema: ""}` (only Vertex AI sends `schemaTitle`), and TFX
  1.16 reads the artifact class from that type, failing with AttributeError on
  the empty schema. The task's input spec (`--json_serialized_inputs_spec_args`)
  names each input's type, so the executor input is rewritten with it.
* Output artifacts whose type TFX cannot import are dropped. The open-source
  driver (2.5 and later, with PUBLISH_LOGS on, the default) adds an output
  `executor-logs` typed `system.Artifact` to every task, for the launcher to
  upload the task's log to; TFX 1.16 reads every output's class from its type
  and stops with `ImportError: Could not import system.Artifact`. The launcher
  writes that log itself, so TFX need not see it.
* A parameter the task's input spec declares STRING but the driver sent as a
  struct or list becomes its JSON text: the open-source driver resolves an
  exit handler's final status (PipelineTaskFinalStatus) to a struct, where
  TFX's exit handler expects the JSON string Vertex AI sends.
* `--require_gpus N` (the compiler adds it to the Trainer when the pod asked
  for GPUs) stops the task when fewer GPUs are visible, instead of training
  on the CPU for hours on a node whose driver or device plugin is broken.

After TFX's executor has finished, the zero-byte folder markers below the
task's gs:// outputs are removed (directory_markers.py), which KFP's launcher
would otherwise fail on when it downloads them as the next task's inputs.
"""

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Tuple

from absl import app
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
import tensorflow as tf
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
from tfx.utils import import_utils

from orchestration.kubeflow import directory_markers

INVOCATION_FLAG = '--json_serialized_invocation_args'
INPUTS_SPEC_FLAG = '--json_serialized_inputs_spec_args'
REQUIRE_GPUS_FLAG = '--require_gpus'


class MissingGpuError(RuntimeError):
  """The pod asked for GPUs that TensorFlow cannot see."""


def _has_type(artifact_type: Dict[str, Any]) -> bool:
  return bool(artifact_type.get('schemaTitle') or artifact_type.get('instanceSchema'))


def complete_input_types(executor_input: Dict[str, Any],
                         inputs_spec: Dict[str, Any]) -> Dict[str, Any]:
  """The executor input with every input artifact typed as its input spec says.

  Artifacts that already carry a schema title or a non-empty instance schema
  (Vertex AI, or a backend that sends them) are left as they are.
  """
  spec_types = {name: spec.get('artifactType', {})
                for name, spec in inputs_spec.get('artifacts', {}).items()}
  completed = json.loads(json.dumps(executor_input))
  for name, artifact_list in completed.get('inputs', {}).get('artifacts', {}).items():
    for artifact in artifact_list.get('artifacts', []):
      if _has_type(artifact.get('type', {})):
        continue
      if not _has_type(spec_types.get(name, {})):
        raise ValueError(
            f'Input artifact {name!r} has no type, and the task input spec '
            f'names none either (inputs in the spec: {", ".join(sorted(spec_types))})')
      artifact['type'] = spec_types[name]
  return completed


def tfx_can_type(artifact_type: Dict[str, Any]) -> bool:
  """Whether TFX's entrypoint finds an artifact class for this KFP artifact type."""
  type_schema = json_format.ParseDict(artifact_type, pipeline_spec_pb2.ArtifactTypeSchema(),
                                      ignore_unknown_fields=True)
  if type_schema.WhichOneof('kind') not in ('schema_title', 'instance_schema'):
    return False
  try:
    # TFX 1.16's own lookup (pinned), so the answer is the one its entrypoint reaches.
    import_utils.import_class_by_path(
        kubeflow_v2_entrypoint_utils._retrieve_class_path(type_schema))  # pylint: disable=protected-access
  except ImportError:
    return False
  return True


def drop_untyped_outputs(executor_input: Dict[str, Any]) -> Tuple[Dict[str, Any], List[str]]:
  """The executor input without the outputs TFX cannot type, and their names."""
  completed = json.loads(json.dumps(executor_input))
  outputs = completed.get('outputs', {}).get('artifacts', {})
  dropped = sorted(name for name, artifact_list in outputs.items()
                   if not all(tfx_can_type(artifact.get('type', {}))
                              for artifact in artifact_list.get('artifacts', [])))
  for name in dropped:
    del outputs[name]
  return completed, dropped


def complete_parameter_values(executor_input: Dict[str, Any],
                              inputs_spec: Dict[str, Any]) -> Dict[str, Any]:
  """The executor input with each STRING parameter sent as a struct or list as its JSON."""
  completed = json.loads(json.dumps(executor_input))
  values = completed.get('inputs', {}).get('parameterValues', {})
  for name, spec in inputs_spec.get('parameters', {}).items():
    if spec.get('parameterType') == 'STRING' and isinstance(values.get(name), (dict, list)):
      values[name] = json.dumps(values[name], sort_keys=True)
  return completed


def check_gpus(required: int, visible: Optional[int] = None) -> None:
  """Raises MissingGpuError when fewer than `required` GPUs are visible."""
  if required <= 0:
    return
  if visible is None:
    visible = len(tf.config.list_physical_devices('GPU'))
  if visible < required:
    raise MissingGpuError(
        f'This task asked for {required} GPU(s) but TensorFlow sees {visible}. '
        'Check the node\'s NVIDIA driver and device plugin '
        '(kubectl describe node: nvidia.com/gpu under Allocatable), '
        'or compile with --gpus 0 to train on the CPU.')


def _value_index(argv: List[str], flag: str) -> Optional[int]:
  """Where the value of `flag` is; the compiler writes flag and value as two arguments."""
  if flag in argv[:-1]:
    return argv.index(flag) + 1
  return None


def rewrite_arguments(argv: List[str]) -> Tuple[List[str], int]:
  """TFX's arguments with completed input types, and the GPUs required.

  `--require_gpus` is this module's own flag and is removed; everything else
  reaches TFX's entrypoint unchanged but the executor input. Dropped outputs
  are named on stdout, in the task's log.
  """
  parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
  parser.add_argument(REQUIRE_GPUS_FLAG, type=int, default=0)
  own, rest = parser.parse_known_args(argv)
  invocation_at = _value_index(rest, INVOCATION_FLAG)
  if invocation_at is None:
    raise ValueError(f'{INVOCATION_FLAG} is missing: this module runs compiled KFP tasks')
  executor_input, dropped = drop_untyped_outputs(json.loads(rest[invocation_at]))
  if dropped:
    print(f'Outputs TFX has no artifact type for, left to the launcher: {", ".join(dropped)}')
  spec_at = _value_index(rest, INPUTS_SPEC_FLAG)
  if spec_at is not None:
    inputs_spec = json.loads(rest[spec_at])
    executor_input = complete_parameter_values(
        complete_input_types(executor_input, inputs_spec), inputs_spec)
  rest[invocation_at] = json.dumps(executor_input)
  return rest, own.require_gpus


def parse_flags(argv: List[str]):
  """absl's flags parser for `app.run`: checks, then TFX's own parser."""
  program, arguments = argv[0], argv[1:]
  rewritten, required_gpus = rewrite_arguments(arguments)
  check_gpus(required_gpus)
  # TFX's own parser (pinned TFX 1.16), so its entrypoint sees what it expects.
  return kubeflow_v2_run_executor._parse_flags(  # pylint: disable=protected-access
      [program] + rewritten)


def main(parsed_argv: Tuple[argparse.Namespace, List[str]]) -> None:
  """TFX's entrypoint, then the folder markers below the outputs removed."""
  kubeflow_v2_run_executor.main(parsed_argv)
  args, _ = parsed_argv
  removed = directory_markers.remove_below_outputs(
      json.loads(args.json_serialized_invocation_args))
  if removed:
    print(f'Removed {len(removed)} folder marker objects below the outputs.')


def run(argv: List[str]) -> int:
  """Runs a task; a missing GPU is one line on stderr and exit status 1."""
  try:
    app.run(main, argv=argv, flags_parser=parse_flags)
  except MissingGpuError as e:
    print(f'orchestration.kubeflow.entrypoint: {e}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(run(sys.argv))
