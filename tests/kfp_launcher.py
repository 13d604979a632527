"""Runs a compiled KFP v2 package task by task, the way KFP's driver and launcher do.

For each task, in dependency order, it builds the executor input the driver
would send, substitutes it into the task's own container command and
arguments from the spec, runs that command as a subprocess of this checkout's
environment, and reads back the task's output metadata file to feed the tasks
after it. Two shapes of input artifacts:

* `OPEN_SOURCE`, as the open-source driver sends them (backend/src/v2 in
  kubeflow/pipelines): the name is the ML Metadata id, the type is
  `{instanceSchema: ""}`, and the metadata is what the producer's output
  metadata became after a round trip through ML Metadata custom properties
  (numbers become doubles, booleans integers, structs and lists are wrapped
  in `{"struct": ...}` / `{"list": ...}`).
* `VERTEX`, as Vertex AI sends them: a resource name and `schemaTitle`.

Outputs are typed as in the component's output definitions; parameter values
come from the task's constants or the run's pipeline parameters (defaults from
the root input definitions). The pipeline's tasks sit in the root DAG, or in
one sub-DAG beside exit handler tasks (TFX's layout with an exit handler):
there a task's pipeline parameters resolve through the sub-DAG's own inputs,
as KFP's driver resolves them, and a parameter the sub-DAG does not declare is
an error. Exit handler tasks run after the sub-DAG, failed or not, with its
final status as the open-source driver (KFP 2.14 and later) resolves it: a
struct with `state`, `pipelineTaskName`, `pipelineJobResourceName` and
`error`. The image's `python` is this interpreter.
"""

import dataclasses
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

OPEN_SOURCE = 'open-source'
VERTEX = 'vertex'


class TaskFailed(RuntimeError):
  """A task's command exited non-zero; the message ends with its log's tail."""

  def __init__(self, task: str, returncode: int, log: str):
    tail = '\n'.join(log.splitlines()[-40:])
    super().__init__(f'task {task} exited {returncode}:\n{tail}')
    self.task = task
    self.log = log


@dataclasses.dataclass
class RunResult:
  """Each task's output artifacts, and the wall time of the tasks that ran."""
  run_id: str
  outputs: Dict[str, Dict[str, Dict[str, Any]]]
  seconds: Dict[str, float]
  # (task, output key) -> the recorded artifact, for `Launcher.run(reuse=...)`.
  recorded: Dict[Tuple[str, str], Dict[str, Any]]


def _through_ml_metadata(value: Any) -> Any:
  """A metadata value as KFP stores it in ML Metadata and reads it back."""
  if isinstance(value, bool):
    return float(int(value))
  if isinstance(value, (int, float)):
    return float(value)
  if isinstance(value, str):
    return value
  if isinstance(value, list):
    return {'list': value}
  if isinstance(value, dict):
    return {'struct': value}
  raise ValueError(f'KFP cannot record metadata value {value!r} in ML Metadata')


def _topological_order(tasks: Mapping[str, Any]) -> List[str]:
  order, done = [], set()
  while len(order) < len(tasks):
    ready = sorted(name for name, task in tasks.items() if name not in done
                   and set(task.get('dependentTasks', [])) <= done)
    if not ready:
      raise ValueError(f'cycle among tasks {sorted(set(tasks) - done)}')
    order += ready
    done.update(ready)
  return order


def _placeholders(executor_input: Dict[str, Any]) -> Dict[str, str]:
  """The placeholders KFP's launcher substitutes into a command line."""
  result = {'{{$}}': json.dumps(executor_input)}
  for name, value in executor_input['inputs'].get('parameterValues', {}).items():
    text = value if isinstance(value, str) else json.dumps(value)
    result[f"{{{{$.inputs.parameters['{name}']}}}}"] = text
  for name, artifacts in executor_input['inputs'].get('artifacts', {}).items():
    result[f"{{{{$.inputs.artifacts['{name}'].uri}}}}"] = artifacts['artifacts'][0]['uri']
  for name, artifacts in executor_input['outputs'].get('artifacts', {}).items():
    result[f"{{{{$.outputs.artifacts['{name}'].uri}}}}"] = artifacts['artifacts'][0]['uri']
  return result


# The trigger strategy of an exit handler task.
_EXIT_STRATEGY = 'ALL_UPSTREAM_TASKS_COMPLETED'


def _sub_dag(spec: Mapping[str, Any]) -> Optional[Tuple[str, Dict[str, Any]]]:
  """(name, root task) of the root task that is a DAG, if there is one."""
  for name, task in spec['root']['dag']['tasks'].items():
    if 'dag' in spec['components'][task['componentRef']['name']]:
      return name, task
  return None


def pipeline_tasks(spec: Mapping[str, Any]) -> Dict[str, Any]:
  """The pipeline's own tasks: the sub-DAG's, or the root's but exit handlers."""
  sub_dag = _sub_dag(spec)
  if sub_dag is not None:
    return spec['components'][sub_dag[1]['componentRef']['name']]['dag']['tasks']
  return {name: task for name, task in spec['root']['dag']['tasks'].items()
          if task.get('triggerPolicy', {}).get('strategy') != _EXIT_STRATEGY}


def exit_tasks(spec: Mapping[str, Any]) -> List[str]:
  return sorted(name for name, task in spec['root']['dag']['tasks'].items()
                if task.get('triggerPolicy', {}).get('strategy') == _EXIT_STRATEGY)


def _definition(spec: Mapping[str, Any], name: str) -> Tuple[Any, Any, Any]:
  """What KFP's cache key of a task reads from the spec: the task, its component, its executor."""
  task = {**spec['root']['dag']['tasks'], **pipeline_tasks(spec)}[name]
  component = spec['components'][task['componentRef']['name']]
  return task, component, spec['deploymentSpec']['executors'][component['executorLabel']]


def changed_tasks(spec: Mapping[str, Any], earlier_spec: Mapping[str, Any]) -> List[str]:
  """The tasks of `spec` whose inputs differ from `earlier_spec`'s, in dependency order.

  A task's inputs differ when its own definition (parameters, container) does,
  or when a task it reads from differs. The others would be cache hits of a
  run of `earlier_spec` on the same data.
  """
  tasks = pipeline_tasks(spec)
  changed: List[str] = []
  for name in _topological_order(tasks):
    if (name not in pipeline_tasks(earlier_spec)
        or _definition(spec, name) != _definition(earlier_spec, name)
        or set(tasks[name].get('dependentTasks', [])) & set(changed)):
      changed.append(name)
  return changed


class Launcher:
  """Executes one compiled package; `run` is one pipeline run."""

  def __init__(self, package_path: str, work_dir: str, project_dir: str,
               shape: str = OPEN_SOURCE):
    with open(package_path) as f:
      self.spec = list(yaml.safe_load_all(f))[0]
    self.work_dir = work_dir
    self.project_dir = project_dir
    self.shape = shape
    self._next_id = 1

  def _env(self) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=self.project_dir, TF_USE_LEGACY_KERAS='1',
               TF_CPP_MIN_LOG_LEVEL='2')
    return env

  def _root_parameter(self, key: str, run_parameters: Mapping[str, Any]) -> Any:
    declared = self.spec['root'].get('inputDefinitions', {}).get('parameters', {})
    if key not in declared:
      raise ValueError(f'the pipeline has no input parameter {key!r}')
    return run_parameters.get(key, declared[key].get('defaultValue'))

  def _component_input(self, name: str, key: str,
                       run_parameters: Mapping[str, Any]) -> Any:
    """Parameter `key` of the DAG that holds task `name`, as KFP's driver resolves it."""
    sub_dag = _sub_dag(self.spec)
    if sub_dag is None or name not in pipeline_tasks(self.spec):
      return self._root_parameter(key, run_parameters)
    dag_name, dag_task = sub_dag
    declared = self.spec['components'][dag_task['componentRef']['name']].get(
        'inputDefinitions', {}).get('parameters', {})
    passed = dag_task.get('inputs', {}).get('parameters', {})
    if key not in declared or key not in passed:
      raise ValueError(f'task {name}: its DAG {dag_name} has no input parameter {key!r}')
    return self._root_parameter(passed[key]['componentInputParameter'], run_parameters)

  def _parameter_values(self, name: str, task: Dict[str, Any],
                        run_parameters: Mapping[str, Any],
                        final_status: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    values = {}
    for key, parameter in task.get('inputs', {}).get('parameters', {}).items():
      if 'runtimeValue' in parameter:
        values[key] = parameter['runtimeValue']['constant']
      elif 'componentInputParameter' in parameter:
        values[key] = self._component_input(
            name, parameter['componentInputParameter'], run_parameters)
      elif 'taskFinalStatus' in parameter and final_status is not None:
        values[key] = final_status
      else:
        raise ValueError(f'parameter {key}: the emulator knows constants, pipeline '
                         f'parameters and final statuses only, got {parameter}')
    return values

  def _input_artifact(self, recorded: Dict[str, Any]) -> Dict[str, Any]:
    artifact_id, artifact, title = recorded['id'], recorded['artifact'], recorded['title']
    if self.shape == VERTEX:
      return {'name': f'projects/p/locations/l/metadataStores/default/artifacts/{artifact_id}',
              'uri': artifact['uri'], 'metadata': artifact.get('metadata', {}),
              'type': {'schemaTitle': title}}
    return {'name': str(artifact_id), 'uri': artifact['uri'],
            'metadata': {key: _through_ml_metadata(value)
                         for key, value in artifact.get('metadata', {}).items()},
            'type': {'instanceSchema': ''}}

  def _run_task(self, name: str, run_id: str, run_parameters: Mapping[str, Any],
                recorded: Dict[Tuple[str, str], Dict[str, Any]],
                final_status: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    task, component, executor = _definition(self.spec, name)
    container = executor['container']
    pipeline_root = self.spec['defaultPipelineRoot']
    task_dir = os.path.join(self.work_dir, run_id, name)
    os.makedirs(task_dir, exist_ok=True)
    outputs = {}
    for key, output in component.get('outputDefinitions', {}).get('artifacts', {}).items():
      outputs[key] = {'artifacts': [{
          'uri': f'{pipeline_root}/{self.spec["pipelineInfo"]["name"]}/{run_id}/{name}/{key}',
          'type': output['artifactType'], 'metadata': {}}]}
    inputs = {}
    for key, source in task.get('inputs', {}).get('artifacts', {}).items():
      producer = source['taskOutputArtifact']
      inputs[key] = {'artifacts': [self._input_artifact(
          recorded[producer['producerTask'], producer['outputArtifactKey']])]}
    executor_input = {
        'inputs': {'parameterValues': self._parameter_values(
            name, task, run_parameters, final_status),
                   'artifacts': inputs},
        'outputs': {'artifacts': outputs,
                    'outputFile': os.path.join(task_dir, 'output_metadata.json')},
    }
    placeholders = _placeholders(executor_input)
    command = []
    for argument in container['command'] + container.get('args', []):
      for placeholder, value in placeholders.items():
        argument = argument.replace(placeholder, value)
      command.append(argument)
    if command[0] == 'python':
      command[0] = sys.executable
    result = subprocess.run(command, cwd=task_dir, env=self._env(), check=False,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(os.path.join(task_dir, 'log.txt'), 'w') as f:
      f.write(result.stdout)
    if result.returncode != 0:
      raise TaskFailed(name, result.returncode, result.stdout)
    with open(executor_input['outputs']['outputFile']) as f:
      executor_output = json.load(f)
    produced = {}
    for key, artifact_list in outputs.items():
      artifact = artifact_list['artifacts'][0]
      written = executor_output.get('artifacts', {}).get(key, {}).get('artifacts', [])
      if written:
        artifact['uri'] = written[0].get('uri') or artifact['uri']
        artifact['metadata'].update(written[0].get('metadata', {}))
      title = yaml.safe_load(component['outputDefinitions']['artifacts'][key]
                             ['artifactType']['instanceSchema'])['title']
      recorded[name, key] = {'id': self._next_id, 'artifact': artifact, 'title': title}
      self._next_id += 1
      produced[key] = artifact
    return produced

  def run(self, run_id: str, parameters: Optional[Mapping[str, Any]] = None,
          reuse: Optional[RunResult] = None,
          execute: Optional[Tuple[str, ...]] = None) -> RunResult:
    """Runs the tasks in dependency order; raises TaskFailed on the first failure.

    With `reuse`, only the tasks in `execute` run; the others hand on the
    outputs they produced in that earlier run (of this package or another),
    as KFP does for cache hits. Exit handler tasks run last, also after a
    failure (which is raised after them).
    """
    recorded: Dict[Tuple[str, str], Dict[str, Any]] = {}
    if reuse is not None:
      # New artifacts get ids the reused ones do not have, as ML Metadata's would.
      self._next_id = max([self._next_id - 1] + [
          artifact['id'] for artifact in reuse.recorded.values()]) + 1
    outputs, seconds = {}, {}
    failure: Optional[TaskFailed] = None
    for name in _topological_order(pipeline_tasks(self.spec)):
      if reuse is not None and name not in execute:
        outputs[name] = reuse.outputs[name]
        recorded.update({key: value for key, value in reuse.recorded.items()
                         if key[0] == name})
        continue
      started = time.monotonic()
      try:
        outputs[name] = self._run_task(name, run_id, parameters or {}, recorded)
      except TaskFailed as e:
        failure = e
        break
      seconds[name] = time.monotonic() - started
    for name in exit_tasks(self.spec):
      started = time.monotonic()
      outputs[name] = self._run_task(name, run_id, parameters or {}, recorded,
                                     self._final_status(run_id, failure))
      seconds[name] = time.monotonic() - started
    if failure is not None:
      raise failure
    return RunResult(run_id, outputs, seconds, recorded)

  def _final_status(self, run_id: str, failure: Optional[TaskFailed]) -> Dict[str, Any]:
    """The sub-DAG's PipelineTaskFinalStatus as the open-source driver resolves it."""
    sub_dag = _sub_dag(self.spec)
    status = {'state': 'FAILED' if failure else 'SUCCEEDED',
              'pipelineJobResourceName': run_id,
              'pipelineTaskName': sub_dag[0] if sub_dag else '',
              'error': {}}
    if failure is not None:
      status['error'] = {'code': 2, 'message': f'task {failure.task} failed'}
    return status
