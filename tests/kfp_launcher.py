"""Runs a compiled KFP v2 package task by task, the way KFP's driver and launcher do.

For each task, in dependency order, it builds the executor input the driver
would send, substitutes it into the task's own container command and
arguments from the spec, runs that command as a subprocess of this checkout's
environment, and reads back the task's output metadata file to feed the tasks
after it. What the driver sends depends on the backend: `BACKENDS` holds one
row per KFP version this project supports, read from that version's source in
kubeflow/pipelines (the tag's `backend/src/v2`), plus Vertex AI:

* Input artifacts. The open-source driver names each by its ML Metadata id and
  types it `{instanceSchema: ""}` (metadata/client.go, OutputArtifact
  `Schema: ""`); the metadata is what the producer's output metadata became
  after a round trip through ML Metadata custom properties
  (metadata/converter.go: numbers become doubles, booleans integers, structs
  and lists are wrapped). Vertex AI sends a resource name and `schemaTitle`.
* Output artifacts, typed as in the component's output definitions. With
  PUBLISH_LOGS on (the manifests' default) the driver adds one more,
  `executor-logs`, typed `{schemaTitle: system.Artifact}` (driver.go,
  provisionOutputs). From 2.17 each output is named by its key, its URI has
  the key below a per-task salt, and the output metadata file sits under the
  task's local root when the pipeline root is an object store.
* Exit handler tasks (`taskFinalStatus`). The argo compiler of versions before
  2.14 refuses the run ("task final status not supported yet",
  compiler/argocompiler/dag.go). From 2.14 the driver resolves the final status
  (driver/resolve.go) to a struct whose `state` is the ML Metadata execution
  state of the sub-DAG (COMPLETE or FAILED, metadata/client.go
  UpdateDAGExecutionsState) and whose `error` is always empty.

* Output parameters and KFP's cache. A task's output parameters get an output
  file each (driver.go provisionOutputs), and the launcher takes their values
  from the executor output, else from those files (component/launcher_v2.go
  collectOutputParameters); a later task's `taskOutputParameter` reads them
  (resolveUpstreamParameters, driver.go at 2.5.0, driver/resolve.go from 2.14.0).
  With an `ExecutionCache`, a task whose caching option
  is on and whose cache key (cacheutils/cache.go GenerateCacheKey: input
  artifact names, resolved input parameter values, output artifact specs
  without URIs, output parameter types, image, command and arguments before
  substitution) matches an earlier execution of the same pipeline does not run:
  it hands on that execution's artifacts and output parameters
  (reuseCachedOutputs, driver.go at 2.5.0, driver/cache.go from 2.14.0), so the
  tasks after it see the same inputs.
  Before a task runs, the launcher creates the local folder each output
  artifact is written into (launcher_v2.go prepareOutputFolders): a value
  artifact (a string, say) is a file that its executor writes directly.

The pipeline's tasks sit in the root DAG, or in one sub-DAG beside exit
handler tasks (TFX's layout with an exit handler): there a task's pipeline
parameters resolve through the sub-DAG's own inputs, as KFP's driver resolves
them, and a parameter the sub-DAG does not declare is an error. Exit handler
tasks run after the sub-DAG, failed or not.

Around each task the emulator does what KFP's launcher does with the object
store (tests/fake_object_store.py): the pipeline root must be gs:// (a
local one fails every task in the launcher), the bucket is a local folder,
input artifacts are downloaded into the task's container folder before its
command, and outputs uploaded after it. The task is handed the bucket
folder's paths in place of gs:// URIs, the one thing a cluster would send
differently. The image's `python` is this interpreter; when the tests run
as root, tasks run as the image's user (uid 1000), as the Dockerfile's do
(`image_user_mode`).
"""

import dataclasses
import functools
import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

from tests import fake_object_store


@dataclasses.dataclass(frozen=True)
class Backend:
  """What one backend's driver and launcher send a task, from its source."""
  name: str
  # Input artifacts named by ML Metadata id and typed {instanceSchema: ""};
  # False: Vertex AI's resource names and schemaTitle.
  open_source_inputs: bool
  # The driver adds the `executor-logs` output (PUBLISH_LOGS, on by default).
  executor_logs: bool
  # Outputs named by their key, under a per-task salt (2.17 and later).
  named_outputs: bool
  # The launcher downloads only the objects at or below an input's key
  # (2.17 and later); before, every object whose name starts with the key.
  downloads_only_below_key: bool
  # The run is accepted with `taskFinalStatus` inputs (exit handlers).
  final_status: bool
  # PipelineTaskFinalStatus.state of a sub-DAG that succeeded, and of one that failed.
  succeeded_state: str
  failed_state: str
  # Where each row was read (kubeflow/pipelines at the tag, or Vertex AI's docs).
  source: str


KFP_2_5 = Backend(
    name='KFP 2.5.0', open_source_inputs=True, executor_logs=True, named_outputs=False,
    downloads_only_below_key=False, final_status=False, succeeded_state='', failed_state='',
    source='2.5.0: backend/src/v2/driver/driver.go (provisionOutputs), '
           'metadata/client.go, compiler/argocompiler/dag.go, objectstore/object_store.go')
KFP_2_14 = Backend(
    name='KFP 2.14.0', open_source_inputs=True, executor_logs=True, named_outputs=False,
    downloads_only_below_key=False, final_status=True, succeeded_state='COMPLETE',
    failed_state='FAILED',
    source='2.14.0: backend/src/v2/driver/driver.go, driver/resolve.go, metadata/client.go')
KFP_2_17 = Backend(
    name='KFP 2.17.0', open_source_inputs=True, executor_logs=True, named_outputs=True,
    downloads_only_below_key=True, final_status=True, succeeded_state='COMPLETE',
    failed_state='FAILED',
    source='2.17.0: backend/src/v2/driver/driver.go, driver/resolve.go, metadata/client.go, '
           'objectstore/object_store.go (isBlobKeyUnderPrefix)')
VERTEX = Backend(
    name='Vertex AI', open_source_inputs=False, executor_logs=False, named_outputs=False,
    downloads_only_below_key=False, final_status=True, succeeded_state='SUCCEEDED',
    failed_state='FAILED',
    source='kfp 2.5.0 SDK: kfp/dsl/task_final_status.py (the states Vertex AI sends)')
BACKENDS = (KFP_2_5, KFP_2_14, KFP_2_17, VERTEX)

EXECUTOR_LOGS = 'executor-logs'
# The image's user (Dockerfile): tasks never run as root.
IMAGE_UID = 1000


def _closed_folder(path: str) -> Optional[str]:
  """The highest folder on the way to `path` that other users cannot pass, if any."""
  path = os.path.realpath(path)
  closed = None
  while path != os.path.dirname(path):
    path = os.path.dirname(path)
    if not os.stat(path).st_mode & stat.S_IXOTH:
      closed = path
  return closed


def _interpreter_paths() -> List[str]:
  return [sys.executable, os.path.join(sys.prefix, 'pyvenv.cfg'), sys.base_prefix]


def _private_mounts_work() -> bool:
  """Whether this process may make a private mount namespace (CAP_SYS_ADMIN)."""
  return subprocess.run(['unshare', '--mount', '--propagation', 'private', 'true'],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        check=False).returncode == 0


@functools.lru_cache(maxsize=None)
def image_user_mode() -> str:
  """How tasks become the image's user (uid 1000), or why they cannot.

  'direct': the interpreter is reachable by any user, the task runs as uid
  1000. 'private-mounts': the interpreter sits below one folder closed to
  other users (e.g. under /root, mode 0700); each task runs in a private
  mount namespace where that folder is an empty, passable one with only the
  interpreter's tree bound into it (nothing on the machine changes, and the
  rest of the closed folder stays hidden), then drops to uid 1000. A
  sentence: why tasks run as the current user.
  """
  if os.geteuid() != 0:
    return 'the tests do not run as root, so tasks run as the tests\' user'
  closed = {_closed_folder(path) for path in _interpreter_paths()} - {None}
  if not closed:
    return 'direct'
  if len(closed) > 1:
    return f'the interpreter lies below several closed folders: {sorted(closed)}'
  if not _private_mounts_work():
    return f'{closed.pop()} is closed to other users and no private mount namespace can be made'
  return 'private-mounts'


def as_image_user() -> bool:
  """Tasks run as the image's user, not root."""
  return image_user_mode() in ('direct', 'private-mounts')


def _as_image_user(command: List[str], stage_dir: str) -> List[str]:
  """`command` run as uid 1000, through a private mount namespace where needed."""
  drop = ['setpriv', f'--reuid={IMAGE_UID}', f'--regid={IMAGE_UID}', '--clear-groups', '--']
  if image_user_mode() == 'direct':
    return drop + command
  closed = {_closed_folder(path) for path in _interpreter_paths()} - {None}
  closed_folder = closed.pop()
  # The closed folder's child that holds the interpreter, e.g. /root/.pyenv.
  child = os.path.relpath(os.path.realpath(sys.base_prefix), closed_folder).split(os.sep)[0]
  os.makedirs(stage_dir, exist_ok=True)
  script = ('mount --bind "$1/$2" "$3" && mount -t tmpfs -o mode=0755,size=1m tmpfs "$1" '
            '&& mkdir "$1/$2" && mount --bind "$3" "$1/$2" && shift 3 && exec "$@"')
  return (['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh',
           closed_folder, child, stage_dir] + drop + command)


class BackendRefused(RuntimeError):
  """The backend refuses to start a run of the package, as its API server would."""


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
  # (task, output parameter key) -> its value.
  parameters: Dict[Tuple[str, str], Any] = dataclasses.field(default_factory=dict)
  # The tasks served from an `ExecutionCache`, in the order they were reached.
  cached: List[str] = dataclasses.field(default_factory=list)


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


def _make_folders_for(pipeline_root: str, task_root: str) -> None:
  """The folder the task's outputs are written into, as the launcher creates it.

  The launcher runs as the task's user; here the tasks may run as the image's
  user, so each new folder is open to it.
  """
  if '://' in pipeline_root:
    return
  missing = []
  folder = task_root
  while not os.path.isdir(folder) and folder.startswith(pipeline_root):
    missing.append(folder)
    folder = os.path.dirname(folder)
  for folder in reversed(missing):
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o777)


def _text_to_value(text: str, kind: str) -> Any:
  """An output parameter file's text as its type (metadata/converter.go TextToPbValue)."""
  if kind == 'STRING':
    return text
  if kind in ('NUMBER_INTEGER', 'NUMBER_DOUBLE'):
    return float(text)
  if kind == 'BOOLEAN':
    return json.loads(text)
  raise ValueError(f'the emulator reads STRING, NUMBER and BOOLEAN output parameters, not {kind}')


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


def _final_status_inputs(spec: Mapping[str, Any]) -> List[str]:
  """The tasks with a `taskFinalStatus` input, anywhere in the spec."""
  dags = [spec['root']['dag']] + [component['dag'] for component in spec['components'].values()
                                  if 'dag' in component]
  return sorted(name for dag in dags for name, task in dag['tasks'].items()
                if any('taskFinalStatus' in parameter
                       for parameter in task.get('inputs', {}).get('parameters', {}).values()))


def cache_key(executor_input: Mapping[str, Any], component: Mapping[str, Any],
              container: Mapping[str, Any]) -> str:
  """KFP's cache fingerprint of a task (cacheutils/cache.go GenerateCacheKey and
  GenerateFingerPrint)."""
  outputs = executor_input['outputs']
  key = {
      'inputArtifactNames': {
          name: [artifact['name'] for artifact in artifacts['artifacts']]
          for name, artifacts in executor_input['inputs'].get('artifacts', {}).items()},
      'inputParameterValues': executor_input['inputs'].get('parameterValues', {}),
      'outputArtifactsSpec': {
          name: {field: artifacts['artifacts'][0][field]
                 for field in ('name', 'type', 'metadata') if field in artifacts['artifacts'][0]}
          for name, artifacts in outputs.get('artifacts', {}).items()},
      'outputParametersSpec': {
          name: component['outputDefinitions']['parameters'][name]['parameterType']
          for name in outputs.get('parameters', {})},
      'containerSpec': {'image': container['image'],
                        'cmdArgs': container['command'] + container.get('args', [])},
  }
  return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


class ExecutionCache:
  """KFP's cache entries: (pipeline, fingerprint) -> the execution's outputs.

  Entries outlive runs, as the cache table of KFP's API server does; one
  cache serves every run of a package (or of another package of the same
  pipeline) that is given it.
  """

  def __init__(self):
    self._entries: Dict[Tuple[str, str], Tuple[Dict[str, Any], Dict[Tuple[str, str], Any],
                                                Dict[str, Any]]] = {}

  def get(self, pipeline: str, fingerprint: str):
    return self._entries.get((pipeline, fingerprint))

  def put(self, pipeline: str, fingerprint: str, produced: Dict[str, Any],
          recorded: Dict[Tuple[str, str], Any], parameters: Dict[str, Any]) -> None:
    self._entries[pipeline, fingerprint] = (produced, recorded, parameters)

  def last_id(self) -> int:
    """The highest artifact id cached: a later run's new artifacts get higher ones."""
    return max([0] + [artifact['id'] for _, recorded, _ in self._entries.values()
                      for artifact in recorded.values()])


class Launcher:
  """Executes one compiled package on one backend; `run` is one pipeline run."""

  def __init__(self, package_path: str, work_dir: str, project_dir: str,
               backend: Backend = KFP_2_17):
    with open(package_path) as f:
      self.spec = list(yaml.safe_load_all(f))[0]
    if not backend.final_status and _final_status_inputs(self.spec):
      raise BackendRefused(
          f'{backend.name} refuses the run: task final status not supported yet '
          f'(tasks {", ".join(_final_status_inputs(self.spec))})')
    root = self.spec['defaultPipelineRoot']
    try:
      fake_object_store.local_path_for_uri(root, '/')
    except fake_object_store.UnsupportedScheme as e:
      raise ValueError(f'pipeline root {root}: every task would fail in the launcher\'s '
                       f'prepareOutputFolders: {e}') from e
    if not root.startswith(fake_object_store.GCS):
      raise ValueError(f'pipeline root {root}: the emulator fakes gs:// only')
    self.work_dir = work_dir
    self.project_dir = project_dir
    self.backend = backend
    # The object store, shared by every launcher of one work folder.
    self.bucket = fake_object_store.FolderBucket(os.path.join(work_dir, 'object_store'))
    # (run, task) -> the output keys the launcher uploaded after the task.
    self.uploaded: Dict[Tuple[str, str], List[str]] = {}
    self._next_id = 1

  def local_path(self, uri: str) -> str:
    """Where the fake bucket holds the objects of `uri`, for a test to read."""
    return self.bucket.path(uri)

  def _in_bucket_folder(self, executor_input: Dict[str, Any]) -> Dict[str, Any]:
    """The executor input with each gs:// artifact URI replaced by the bucket folder's path.

    The one thing the task sees that a cluster would not send: TFX's own gs://
    I/O cannot be pointed at a fake bucket.
    """
    def local(artifacts):
      return {key: {'artifacts': [{**artifact, 'uri': self.bucket.path(artifact['uri'])}
                                  for artifact in artifact_list['artifacts']]}
              for key, artifact_list in artifacts.items()}
    return {'inputs': {**executor_input['inputs'],
                       'artifacts': local(executor_input['inputs']['artifacts'])},
            'outputs': {**executor_input['outputs'],
                        'artifacts': local(executor_input['outputs']['artifacts'])}}

  def _output_parents(self, outputs: Dict[str, Any]) -> List[str]:
    """Makes the bucket folder's parent folders of each output URI; returns those made.

    A GCS object needs no parent: a task writes gs://BUCKET/A/B/file at once (a
    Python-function component's value output does). In the folder bucket the
    parent must exist, so it is made, and removed after the task if still empty,
    so that it is not listed as a folder marker the task never wrote.
    """
    made = []
    for artifact_list in outputs.values():
      parent = os.path.dirname(self.bucket.path(artifact_list['artifacts'][0]['uri']))
      missing = []
      while not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
      umask = os.umask(0)
      try:
        for folder in reversed(missing):
          os.mkdir(folder, 0o777)
          made.append(folder)
      finally:
        os.umask(umask)
    return made

  def _in_bucket(self, executor_output: Dict[str, Any]) -> Dict[str, Any]:
    """The task's output metadata with the bucket folder's paths as gs:// URIs again."""
    for artifact_list in executor_output.get('artifacts', {}).values():
      for artifact in artifact_list.get('artifacts', []):
        if artifact.get('uri'):
          artifact['uri'] = self.bucket.uri(artifact['uri'])
    return executor_output

  def _env(self, task_dir: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=self.project_dir, TF_USE_LEGACY_KERAS='1',
               TF_CPP_MIN_LOG_LEVEL='2', HOME=task_dir)
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
                        final_status: Optional[Dict[str, Any]],
                        upstream: Optional[Mapping[Tuple[str, str], Any]] = None
                        ) -> Dict[str, Any]:
    values = {}
    for key, parameter in task.get('inputs', {}).get('parameters', {}).items():
      if 'runtimeValue' in parameter:
        values[key] = parameter['runtimeValue']['constant']
      elif 'taskOutputParameter' in parameter:
        producer = parameter['taskOutputParameter']
        source = (producer['producerTask'], producer['outputParameterKey'])
        if upstream is None or source not in upstream:
          raise ValueError(f'task {name}: producer task {source[0]} has no output '
                           f'parameter {source[1]} in this DAG')
        values[key] = upstream[source]
      elif 'componentInputParameter' in parameter:
        values[key] = self._component_input(
            name, parameter['componentInputParameter'], run_parameters)
      elif 'taskFinalStatus' in parameter and final_status is not None:
        values[key] = final_status
      else:
        raise ValueError(f'parameter {key}: the emulator knows constants, pipeline '
                         f'parameters, upstream output parameters and final statuses '
                         f'only, got {parameter}')
    return values

  def _input_artifact(self, recorded: Dict[str, Any]) -> Dict[str, Any]:
    artifact_id, artifact, title = recorded['id'], recorded['artifact'], recorded['title']
    if not self.backend.open_source_inputs:
      return {'name': f'projects/p/locations/l/metadataStores/default/artifacts/{artifact_id}',
              'uri': artifact['uri'], 'metadata': artifact.get('metadata', {}),
              'type': {'schemaTitle': title}}
    return {'name': str(artifact_id), 'uri': artifact['uri'],
            'metadata': {key: _through_ml_metadata(value)
                         for key, value in artifact.get('metadata', {}).items()},
            'type': {'instanceSchema': ''}}

  def _run_task(self, name: str, run_id: str, run_parameters: Mapping[str, Any],
                recorded: Dict[Tuple[str, str], Dict[str, Any]],
                final_status: Optional[Dict[str, Any]] = None,
                parameters: Optional[Dict[Tuple[str, str], Any]] = None,
                cache: Optional[ExecutionCache] = None,
                cached: Optional[List[str]] = None) -> Dict[str, Any]:
    task, component, executor = _definition(self.spec, name)
    container = executor['container']
    pipeline_root = self.spec['defaultPipelineRoot']
    task_dir = os.path.join(self.work_dir, run_id, name)
    os.makedirs(task_dir, exist_ok=True)
    os.chmod(task_dir, 0o777)
    task_root = f'{pipeline_root}/{self.spec["pipelineInfo"]["name"]}/{run_id}/{name}'
    if self.backend.named_outputs:
      task_root += f'/{run_id}-salt'
    output_types = {key: output['artifactType'] for key, output in
                    component.get('outputDefinitions', {}).get('artifacts', {}).items()}
    if self.backend.executor_logs:
      output_types[EXECUTOR_LOGS] = {'schemaTitle': 'system.Artifact'}
    _make_folders_for(pipeline_root, task_root)
    outputs = {}
    for key, output_type in output_types.items():
      artifact = {'uri': f'{task_root}/{key}', 'type': output_type, 'metadata': {}}
      if self.backend.named_outputs:
        artifact['name'] = key
      outputs[key] = {'artifacts': [artifact]}
    inputs = {}
    for key, source in task.get('inputs', {}).get('artifacts', {}).items():
      producer = source['taskOutputArtifact']
      inputs[key] = {'artifacts': [self._input_artifact(
          recorded[producer['producerTask'], producer['outputArtifactKey']])]}
    parameters = {} if parameters is None else parameters
    executor_input = {
        'inputs': {'parameterValues': self._parameter_values(
            name, task, run_parameters, final_status, parameters),
                   'artifacts': inputs},
        'outputs': {'artifacts': outputs,
                    'outputFile': os.path.join(task_dir, 'output_metadata.json')},
    }
    parameter_types = {key: spec['parameterType'] for key, spec in
                       component.get('outputDefinitions', {}).get('parameters', {}).items()}
    if parameter_types:
      os.makedirs(os.path.join(task_dir, 'outputs'), mode=0o777, exist_ok=True)
      os.chmod(os.path.join(task_dir, 'outputs'), 0o777)
      executor_input['outputs']['parameters'] = {
          key: {'outputFile': os.path.join(task_dir, 'outputs', key)} for key in parameter_types}
    pipeline_name = self.spec['pipelineInfo']['name']
    fingerprint = None
    if cache is not None and task.get('cachingOptions', {}).get('enableCache', False):
      fingerprint = cache_key(executor_input, component, container)
      hit = cache.get(pipeline_name, fingerprint)
      if hit is not None:
        produced, hit_recorded, hit_parameters = hit
        recorded.update(hit_recorded)
        parameters.update({(name, key): value for key, value in hit_parameters.items()})
        if cached is not None:
          cached.append(name)
        return produced
    # The launcher's steps before the command, in the task's own `/`. Vertex
    # AI's launcher is not open source (its tasks reach /gcs through Cloud
    # Storage FUSE): nothing is downloaded or uploaded for it.
    mount_root = os.path.join(task_dir, 'container')
    if self.backend.open_source_inputs:
      for artifact_list in inputs.values():
        uri = artifact_list['artifacts'][0]['uri']
        fake_object_store.download_blob(
            self.bucket, uri, fake_object_store.local_path_for_uri(uri, mount_root),
            self.backend.downloads_only_below_key)
      for artifact_list in outputs.values():
        os.makedirs(os.path.dirname(fake_object_store.local_path_for_uri(
            artifact_list['artifacts'][0]['uri'], mount_root)), exist_ok=True)
    placeholders = _placeholders(self._in_bucket_folder(executor_input))
    made = self._output_parents(outputs)
    command = []
    for argument in container['command'] + container.get('args', []):
      for placeholder, value in placeholders.items():
        argument = argument.replace(placeholder, value)
      command.append(argument)
    if command[0] == 'python':
      command[0] = sys.executable
    if as_image_user():
      command = _as_image_user(command, os.path.join(self.work_dir, 'mount_stage'))
    result = subprocess.run(command, cwd=task_dir, env=self._env(task_dir), check=False,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for folder in reversed(made):
      if not os.listdir(folder):
        os.rmdir(folder)
    with open(os.path.join(task_dir, 'log.txt'), 'w') as f:
      f.write(result.stdout)
    if self.backend.executor_logs:
      # getLogWriter: the launcher tees the task's log to the output's local path.
      log_path = fake_object_store.local_path_for_uri(
          outputs[EXECUTOR_LOGS]['artifacts'][0]['uri'], mount_root)
      with open(log_path, 'w') as f:
        f.write(result.stdout)
    if result.returncode != 0:
      raise TaskFailed(name, result.returncode, result.stdout)
    with open(executor_input['outputs']['outputFile']) as f:
      executor_output = self._in_bucket(json.load(f))
    if self.backend.open_source_inputs:
      # uploadOutputArtifacts: a local path the task never wrote is skipped.
      self.uploaded[run_id, name] = sorted(
          key for key, artifact_list in outputs.items() if fake_object_store.upload_blob(
              self.bucket, fake_object_store.local_path_for_uri(
                  artifact_list['artifacts'][0]['uri'], mount_root),
              artifact_list['artifacts'][0]['uri']))
    produced = {}
    for key, artifact_list in outputs.items():
      if key == EXECUTOR_LOGS:
        # The launcher writes the task's log there itself; no task reads it.
        continue
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
    values = dict(executor_output.get('parameterValues', {}))
    for key, kind in parameter_types.items():
      if key not in values:
        with open(executor_input['outputs']['parameters'][key]['outputFile']) as f:
          values[key] = _text_to_value(f.read(), kind)
    parameters.update({(name, key): value for key, value in values.items()})
    if fingerprint is not None:
      cache.put(pipeline_name, fingerprint, produced,
                {key: value for key, value in recorded.items() if key[0] == name}, values)
    return produced

  def run_task(self, name: str, run_id: str,
               parameters: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Runs one task that reads no upstream artifacts (e.g. ImportSchemaGen); its outputs."""
    return self._run_task(name, run_id, parameters or {}, {})

  def run(self, run_id: str, parameters: Optional[Mapping[str, Any]] = None,
          reuse: Optional[RunResult] = None,
          execute: Optional[Tuple[str, ...]] = None,
          cache: Optional[ExecutionCache] = None) -> RunResult:
    """Runs the tasks in dependency order; raises TaskFailed on the first failure.

    With `reuse`, only the tasks in `execute` run; the others hand on the
    outputs they produced in that earlier run (of this package or another),
    as KFP does for cache hits. With `cache`, KFP's cache decides instead
    (`ExecutionCache`): a hit hands on the cached outputs and is listed in
    `RunResult.cached`, not timed. Exit handler tasks run last, also after a
    failure (which is raised after them).
    """
    recorded: Dict[Tuple[str, str], Dict[str, Any]] = {}
    output_parameters: Dict[Tuple[str, str], Any] = {}
    cached: List[str] = []
    if cache is not None:
      # Artifact ids are ML Metadata's: unique across the runs one cache serves.
      self._next_id = max(self._next_id, cache.last_id() + 1)
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
        output_parameters.update({key: value for key, value in reuse.parameters.items()
                                  if key[0] == name})
        continue
      started = time.monotonic()
      try:
        outputs[name] = self._run_task(name, run_id, parameters or {}, recorded,
                                       parameters=output_parameters, cache=cache,
                                       cached=cached)
      except TaskFailed as e:
        failure = e
        break
      if name not in cached:
        seconds[name] = time.monotonic() - started
    self.run_exit_tasks(run_id, failure, parameters, outputs, seconds)
    if failure is not None:
      raise failure
    return RunResult(run_id, outputs, seconds, recorded, output_parameters, cached)

  def run_exit_tasks(self, run_id: str, failure: Optional[TaskFailed],
                     parameters: Optional[Mapping[str, Any]] = None,
                     outputs: Optional[Dict[str, Any]] = None,
                     seconds: Optional[Dict[str, float]] = None) -> None:
    """Runs the exit handler tasks after a sub-DAG that failed with `failure`, or succeeded.

    An exit handler reads no artifacts, only the final status, so a test can
    run it alone after a run whose tasks it need not repeat.
    """
    outputs = {} if outputs is None else outputs
    seconds = {} if seconds is None else seconds
    for name in exit_tasks(self.spec):
      started = time.monotonic()
      outputs[name] = self._run_task(name, run_id, parameters or {}, {},
                                     self.final_status(run_id, failure))
      seconds[name] = time.monotonic() - started

  def final_status(self, run_id: str, failure: Optional[TaskFailed]) -> Dict[str, Any]:
    """The sub-DAG's PipelineTaskFinalStatus as this backend resolves it.

    The open-source driver (resolve.go) leaves `error` empty ("TODO: Implement
    fields Message and Code"); Vertex AI fills it on failure.
    """
    sub_dag = _sub_dag(self.spec)
    status = {'state': self.backend.failed_state if failure else self.backend.succeeded_state,
              'pipelineJobResourceName': run_id,
              'pipelineTaskName': sub_dag[0] if sub_dag else '',
              'error': {}}
    if failure is not None and not self.backend.open_source_inputs:
      status['error'] = {'code': 2, 'message': f'task {failure.task} failed'}
    return status
