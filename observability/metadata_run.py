"""One pipeline run as ML Metadata recorded it: what each component ran and output.

The run summary, the report and the benches all read a run through `read`, so
they agree on which run is meant and what belongs to it.
"""

import dataclasses
from typing import Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata

_RUN_CONTEXT = 'pipeline_run'
_PIPELINE_CONTEXT = 'pipeline'
_NODE_CONTEXT = 'node'
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT,
                  metadata_store_pb2.Event.DECLARED_OUTPUT)


@dataclasses.dataclass(frozen=True)
class ComponentExecution:
  """One component's execution in the run."""
  component: str
  # Seconds since the epoch.
  started: float
  finished: float
  cached: bool
  # Execution property -> value, as the component received them.
  properties: Dict[str, str]
  # Artifact type name -> the artifacts it output.
  outputs: Dict[str, List[metadata_store_pb2.Artifact]]

  @property
  def seconds(self) -> float:
    return self.finished - self.started


@dataclasses.dataclass(frozen=True)
class MetadataRun:
  run_id: str
  # In the order they started.
  executions: List[ComponentExecution]

  def outputs(self, type_name: str) -> List[metadata_store_pb2.Artifact]:
    """Every artifact of `type_name` any component output, in execution order."""
    return [artifact for execution in self.executions
            for artifact in execution.outputs.get(type_name, [])]


def _find_run(store: metadata_store.MetadataStore, pipeline_name: str,
              run_id: Optional[str]) -> metadata_store_pb2.Context:
  """The run context named `run_id`, or the newest run of the pipeline."""
  runs = list(store.get_contexts_by_type(_RUN_CONTEXT))
  pipeline = store.get_context_by_type_and_name(_PIPELINE_CONTEXT, pipeline_name)
  if pipeline is None or not runs:
    raise ValueError(f'No run of pipeline {pipeline_name!r} in ML Metadata.')
  in_pipeline = {e.id for e in store.get_executions_by_context(pipeline.id)}
  runs = [r for r in runs
          if any(e.id in in_pipeline for e in store.get_executions_by_context(r.id))]
  if run_id is None:
    return max(runs, key=lambda r: r.create_time_since_epoch)
  for run in runs:
    if run.name == run_id:
      return run
  known = ', '.join(sorted(r.name for r in runs))
  raise ValueError(f'No run {run_id!r} of pipeline {pipeline_name!r}; runs: {known}.')


def _component_name(store: metadata_store.MetadataStore,
                    execution: metadata_store_pb2.Execution) -> str:
  for context in store.get_contexts_by_execution(execution.id):
    if store.get_context_types_by_id([context.type_id])[0].name == _NODE_CONTEXT:
      return context.name.split('.')[-1]
  return f'execution {execution.id}'


def _value(value: metadata_store_pb2.Value) -> str:
  kind = value.WhichOneof('value')
  return str(getattr(value, kind)) if kind else ''


def _outputs(store: metadata_store.MetadataStore, execution: metadata_store_pb2.Execution
             ) -> Dict[str, List[metadata_store_pb2.Artifact]]:
  events = store.get_events_by_execution_ids([execution.id])
  artifacts = store.get_artifacts_by_id(
      [e.artifact_id for e in events if e.type in _OUTPUT_EVENTS])
  type_names = {t.id: t.name for t in store.get_artifact_types_by_id(
      list({a.type_id for a in artifacts}))}
  by_type: Dict[str, List[metadata_store_pb2.Artifact]] = {}
  for artifact in artifacts:
    by_type.setdefault(type_names[artifact.type_id], []).append(artifact)
  return by_type


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
  """The SQLite ML Metadata store at `metadata_path`, created if it does not exist."""
  return metadata_store.MetadataStore(
      metadata.sqlite_metadata_connection_config(metadata_path))


def read(metadata_path: str, pipeline_name: str,
         run_id: Optional[str] = None) -> MetadataRun:
  """Run `run_id` (default: the newest) of `pipeline_name` in the SQLite store.

  Raises ValueError when the store has no such run.
  """
  store = open_store(metadata_path)
  run = _find_run(store, pipeline_name, run_id)
  executions = sorted(store.get_executions_by_context(run.id),
                      key=lambda e: e.create_time_since_epoch)
  return MetadataRun(run.name, [
      ComponentExecution(
          component=_component_name(store, e),
          started=e.create_time_since_epoch / 1000.0,
          finished=e.last_update_time_since_epoch / 1000.0,
          cached=e.last_known_state == metadata_store_pb2.Execution.CACHED,
          properties={k: _value(v) for k, v in e.custom_properties.items()},
          outputs=_outputs(store, e))
      for e in executions])
