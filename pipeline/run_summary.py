"""What a finished run did, read back from ML Metadata and its artifacts.

The summary covers the newest run of the pipeline: wall time per component
(cached ones marked), the Evaluator's metrics, whether the model was blessed
and, if not, which rule failed, and where the Pusher put it: only what is on
disk now, so a version deleted since its push is reported as missing.
"""

import dataclasses
import os
import re
from typing import Dict, List, Optional, Sequence

import tensorflow_model_analysis as tfma
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.io import fileio
from tfx.orchestration import metadata

from components import data_audit

_RUN_CONTEXT = 'pipeline_run'
_NODE_CONTEXT = 'node'
_CACHED = metadata_store_pb2.Execution.CACHED


@dataclasses.dataclass
class ComponentTime:
  component: str
  seconds: float
  cached: bool


@dataclasses.dataclass
class RunSummary:
  run_id: str
  components: List[ComponentTime]
  metrics: Dict[str, float]
  blessed: Optional[bool]
  failed_checks: List[str]
  baseline_version: Optional[str]
  pushed_path: Optional[str]
  # One line on what ImageExampleGen ingested and quarantined (data_audit.md).
  data_audit: Optional[str] = None
  # A version ML Metadata records as pushed that is no longer on disk.
  missing_push: Optional[str] = None

  def format(self) -> str:
    lines = [f'Run {self.run_id}', '', 'Component wall time:']
    for c in self.components:
      note = ' (cached)' if c.cached else ''
      lines.append(f'  {c.component:<22} {c.seconds:8.1f} s{note}')
    lines.append(f'  {"total":<22} {sum(c.seconds for c in self.components):8.1f} s')
    if self.metrics:
      lines += ['', 'Evaluation (held-out test split):']
      lines += [f'  {name:<28} {value:.4f}' for name, value in sorted(self.metrics.items())]
    lines.append('')
    baseline = (f'served version {self.baseline_version}' if self.baseline_version
                else 'none served yet')
    if self.blessed is None:
      lines.append('Blessed: no evaluation ran.')
    elif self.blessed:
      lines.append(f'Blessed: yes (thresholds met; baseline: {baseline}).')
    else:
      lines.append(f'Blessed: no (baseline: {baseline}). Failed checks:')
      lines += [f'  - {check}' for check in self.failed_checks]
    if self.pushed_path:
      lines.append(f'Pushed: {self.pushed_path}')
    elif self.missing_push:
      lines.append(f'Pushed: nothing on disk; {self.missing_push} was pushed but has '
                   'since been deleted. Rerun to push it again.')
    else:
      lines.append('Pushed: nothing.')
    if self.data_audit:
      lines.append(self.data_audit)
    return '\n'.join(lines)


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
  return metadata_store.MetadataStore(
      metadata.sqlite_metadata_connection_config(metadata_path))


def find_run(store: metadata_store.MetadataStore, pipeline_name: str,
             run_id: Optional[str] = None):
  """The run context named `run_id`, or the newest run of the pipeline."""
  runs = [c for c in store.get_contexts_by_type(_RUN_CONTEXT)]
  pipeline = store.get_context_by_type_and_name('pipeline', pipeline_name)
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


def run_executions(store: metadata_store.MetadataStore, run) -> list:
  """The run's executions in the order they started."""
  return sorted(store.get_executions_by_context(run.id),
                key=lambda e: e.create_time_since_epoch)


def component_name(store, execution) -> str:
  for context in store.get_contexts_by_execution(execution.id):
    if store.get_context_types_by_id([context.type_id])[0].name == _NODE_CONTEXT:
      return context.name.split('.')[-1]
  return f'execution {execution.id}'


def output_artifacts(store, execution, type_name: str):
  events = store.get_events_by_execution_ids([execution.id])
  ids = [e.artifact_id for e in events
         if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
  artifact_type = store.get_artifact_type(type_name)
  return [a for a in store.get_artifacts_by_id(ids) if a.type_id == artifact_type.id]


def overall_metrics(evaluation_uri: str, class_names: Sequence[str],
                    model_name: Optional[str] = None) -> Dict[str, float]:
  """Metrics of the whole split; binarized ones get their class name appended.

  `model_name` picks the model of a comparison (e.g. 'baseline'); None: the candidate.
  """
  result = tfma.load_eval_result(evaluation_uri, model_name=model_name)
  metrics = {}
  for slice_key, by_output in result.slicing_metrics:
    if slice_key:
      continue
    for sub_key, values in by_output.get('', {}).items():
      binarized = re.fullmatch(r'classId:(\d+)', sub_key)
      suffix = f'_{class_names[int(binarized.group(1))]}' if binarized else ''
      for name, value in values.items():
        if 'doubleValue' in value:
          metrics[name + suffix] = float(value['doubleValue'])
  return metrics


def _describe_failure(failure) -> str:
  name = failure.metric_key.name
  value = failure.metric_value.double_value.value
  if failure.metric_key.is_diff:
    tolerance = failure.metric_threshold.change_threshold.absolute.value
    return (f'{name} is {value:+.4f} against the served model '
            f'(allowed: {tolerance:+.4f} or better)')
  if failure.message:
    return f'{name}: {failure.message}'
  bound = failure.metric_threshold.value_threshold.lower_bound.value
  return f'{name} = {value:.4f}, below the required {bound:.4f}'


def _failed_checks(evaluation_uri: str) -> List[str]:
  validation = tfma.load_validation_result(evaluation_uri)
  return [_describe_failure(failure)
          for per_slice in validation.metric_validations_per_slice
          for failure in per_slice.failures]


def summarize(metadata_path: str, pipeline_name: str, class_names: Sequence[str],
              run_id: Optional[str] = None) -> RunSummary:
  """Reads run `run_id` (default: the newest) of `pipeline_name` from the SQLite
  store at `metadata_path`."""
  store = open_store(metadata_path)
  run = find_run(store, pipeline_name, run_id)
  components, metrics, failed, blessed, baseline, pushed = [], {}, [], None, None, None
  audit, missing = None, None
  for execution in run_executions(store, run):
    name = component_name(store, execution)
    components.append(ComponentTime(
        name, (execution.last_update_time_since_epoch -
               execution.create_time_since_epoch) / 1000.0,
        execution.last_known_state == _CACHED))
    for evaluation in output_artifacts(store, execution, 'ModelEvaluation'):
      if fileio.glob(os.path.join(evaluation.uri, 'metrics*')):
        metrics = overall_metrics(evaluation.uri, class_names)
        failed = _failed_checks(evaluation.uri)
    for blessing in output_artifacts(store, execution, 'ModelBlessing'):
      blessed = blessing.custom_properties['blessed'].int_value == 1
      baseline = blessing.custom_properties['baseline_served_version'].string_value or None
    for push in output_artifacts(store, execution, 'PushedModel'):
      if push.custom_properties['pushed'].int_value == 1:
        destination = push.custom_properties['pushed_destination'].string_value
        if fileio.exists(destination):
          pushed = destination
        else:
          missing = destination
    for examples in output_artifacts(store, execution, 'Examples'):
      if fileio.exists(os.path.join(examples.uri, data_audit.JSON_FILE_NAME)):
        audit = (f'{data_audit.summary_line(data_audit.read(examples.uri))} Report: '
                 f'{os.path.join(examples.uri, data_audit.REPORT_FILE_NAME)}')
  return RunSummary(run.name, components, metrics, blessed, failed, baseline, pushed,
                    audit, missing)
