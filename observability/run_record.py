"""A run as the report needs it: its summary, its output artifacts, its settings.

Built on `observability.run_summary`, which already knows how to find a run in ML
Metadata; this adds where each component's outputs live and the execution
properties each component ran with.
"""

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

from ml_metadata.proto import metadata_store_pb2

from observability import run_summary

_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT,
                  metadata_store_pb2.Event.DECLARED_OUTPUT)


@dataclasses.dataclass
class RunRecord:
  summary: run_summary.RunSummary
  # (component, artifact type name) -> the artifacts it output in this run.
  artifacts: Dict[Tuple[str, str], List[metadata_store_pb2.Artifact]]
  # component -> execution property -> value, as the component received them.
  properties: Dict[str, Dict[str, str]]

  def uri(self, component: str, type_name: str) -> Optional[str]:
    found = self.artifacts.get((component, type_name))
    return found[0].uri if found else None


def _value(value: metadata_store_pb2.Value) -> str:
  kind = value.WhichOneof('value')
  return str(getattr(value, kind)) if kind else ''


def load(metadata_path: str, pipeline_name: str, class_names: Sequence[str],
         run_id: Optional[str] = None) -> RunRecord:
  """Run `run_id` (default: the newest) of `pipeline_name`.

  Raises ValueError when the store has no such run.
  """
  summary = run_summary.summarize(metadata_path, pipeline_name, class_names, run_id)
  store = run_summary.open_store(metadata_path)
  run = run_summary.find_run(store, pipeline_name, summary.run_id)
  artifacts, properties = {}, {}
  for execution in run_summary.run_executions(store, run):
    component = run_summary.component_name(store, execution)
    properties[component] = {k: _value(v) for k, v in execution.custom_properties.items()}
    events = store.get_events_by_execution_ids([execution.id])
    outputs = store.get_artifacts_by_id(
        [e.artifact_id for e in events if e.type in _OUTPUT_EVENTS])
    type_names = {t.id: t.name for t in store.get_artifact_types_by_id(
        list({a.type_id for a in outputs}))}
    for artifact in outputs:
      artifacts.setdefault((component, type_names[artifact.type_id]), []).append(artifact)
  return RunRecord(summary, artifacts, properties)
