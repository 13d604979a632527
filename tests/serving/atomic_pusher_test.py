"""Pushes seen from TF Serving's side: a poller must only ever find whole models."""

import json
import logging
import os
import threading

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import text_format
from google.protobuf import wrappers_pb2
import pytest
from tensorflow_serving.config import model_server_config_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import io_utils

from components import atomic_pusher
from contracts import names
from contracts import serving
from serving import serving_config
from serving import serving_dir
from serving import serving_ops
from tests.serving import object_store


def _relative_files(root: str):
  return {os.path.relpath(os.path.join(folder, name), root)
          for folder, _, names in os.walk(root) for name in names}


def _incomplete_highest_version(model_base_dir: str, expected_files) -> str:
  """What one TF Serving poll would load, if it is incomplete; else ''.

  TF Serving takes the highest numeric folder, whatever it holds. A version
  pruned while being read (its `saved_model.pb` deleted first, then the rest)
  is no longer a SavedModel when the read ends, which is allowed: a poll under
  load can list a version, then see it pruned by later pushes before it is read.
  """
  versions = [name for name in os.listdir(model_base_dir) if name.isdigit()]
  if not versions:
    return ''
  version_dir = os.path.join(model_base_dir, max(versions, key=int))
  missing = expected_files - _relative_files(version_dir)
  if missing and os.path.isfile(os.path.join(version_dir, serving.SAVED_MODEL_FILE)):
    return f'{version_dir} lacks {sorted(missing)}'
  return ''


def _push_while_polling(model_dir: str, model_base_dir: str, pushes: int, keep: int):
  """Pushes `pushes` times while a thread polls; returns (problems, polls)."""
  expected = _relative_files(model_dir)
  os.makedirs(model_base_dir)
  done = threading.Event()
  problems, polls = [], []

  def poll():
    while not done.is_set():
      problem = _incomplete_highest_version(model_base_dir, expected)
      polls.append(problem)
      if problem:
        problems.append(problem)

  poller = threading.Thread(target=poll)
  poller.start()
  try:
    for _ in range(pushes):
      atomic_pusher.push_atomically(model_dir, model_base_dir)
      serving_dir.remove_versions(model_base_dir,
                                  serving_dir.old_versions(model_base_dir, keep))
  finally:
    done.set()
    poller.join()
  return problems, len(polls)


def test_poller_never_sees_a_partial_version(exported, tmp_path):
  model_base_dir = str(tmp_path / 'serving' / 'busi_classifier')
  problems, polls = _push_while_polling(exported.saved_model_dir, model_base_dir,
                                        pushes=6, keep=2)
  assert polls > 10, 'the poller must have overlapped the pushes'
  assert problems == []


def test_poller_detects_a_partial_version(exported, tmp_path):
  """The check above can fail: a half-copied version is caught."""
  model_base_dir = str(tmp_path / 'busi_classifier')
  partial = os.path.join(model_base_dir, '7')
  os.makedirs(partial)
  io_utils.copy_file(os.path.join(exported.saved_model_dir, serving.SAVED_MODEL_FILE),
                     os.path.join(partial, serving.SAVED_MODEL_FILE))
  problem = _incomplete_highest_version(model_base_dir,
                                        _relative_files(exported.saved_model_dir))
  assert 'variables/variables.index' in problem


def test_keeps_only_the_newest_versions(exported, tmp_path):
  model_base_dir = str(tmp_path / 'busi_classifier')
  pushed = [int(os.path.basename(
      atomic_pusher.push_atomically(exported.saved_model_dir, model_base_dir)))
            for _ in range(4)]
  removed = serving_dir.old_versions(model_base_dir, keep=2)
  serving_dir.remove_versions(model_base_dir, removed)
  assert pushed == sorted(pushed) and len(set(pushed)) == 4
  assert removed == pushed[:2]
  assert serving_dir.served_versions(model_base_dir) == pushed[2:]
  assert sorted(os.listdir(model_base_dir)) == sorted(str(v) for v in pushed[2:])


def _run_executor(model_dir: str, model_base_dir: str, keep: int, pushed_uri: str):
  model = standard_artifacts.Model()
  model.uri = os.path.dirname(model_dir)
  blessing = standard_artifacts.ModelBlessing()
  blessing.set_int_custom_property('blessed', 1)
  pushed_model = standard_artifacts.PushedModel()
  pushed_model.uri = pushed_uri
  atomic_pusher.Executor().Do(
      {standard_component_specs.MODEL_KEY: [model],
       standard_component_specs.MODEL_BLESSING_KEY: [blessing]},
      {standard_component_specs.PUSHED_MODEL_KEY: [pushed_model]},
      {standard_component_specs.PUSH_DESTINATION_KEY: json.dumps(
          {'filesystem': {'base_directory': model_base_dir}}),
       standard_component_specs.CUSTOM_CONFIG_KEY: json.dumps(
           {atomic_pusher.KEEP_VERSIONS_KEY: keep})})
  return pushed_model


def test_executor_pushes_a_blessed_model_and_prunes(exported, tmp_path):
  # The Trainer's model artifact holds the SavedModel under Format-Serving.
  model_dir = str(tmp_path / 'model' / 'Format-Serving')
  io_utils.copy_dir(exported.saved_model_dir, model_dir)
  model_base_dir = str(tmp_path / 'serving')
  for push in range(3):
    pushed = _run_executor(model_dir, model_base_dir, keep=2,
                           pushed_uri=str(tmp_path / f'pushed_{push}'))
  versions = serving_dir.served_versions(model_base_dir)
  # The 2 newest, and the first: still `stable` until a server has loaded another.
  assert len(versions) == 3
  assert serving_config.read_served_versions(model_base_dir).stable == versions[0]
  assert pushed.get_int_custom_property('pushed') == 1
  assert pushed.get_string_custom_property('pushed_version') == str(versions[-1])
  assert _relative_files(os.path.join(model_base_dir, str(versions[-1]))) == (
      _relative_files(exported.saved_model_dir))


def test_executor_refuses_to_keep_no_version(exported, tmp_path):
  model_dir = str(tmp_path / 'model' / 'Format-Serving')
  io_utils.copy_dir(exported.saved_model_dir, model_dir)
  with pytest.raises(ValueError, match='keep_versions is 0'):
    _run_executor(model_dir, str(tmp_path / 'serving'), keep=0,
                  pushed_uri=str(tmp_path / 'pushed'))
  assert not os.path.exists(tmp_path / 'serving')


# ---- Object stores: no folder rename, every object write seen on its own ----


def _half_models(model_base_dir: str, model_dir: str):
  """What a TF Serving poll could load that is not a whole model, at this instant.

  Two pollers: one that takes any numeric folder holding `saved_model.pb`
  (TF Serving's default policy, guarded by writing that file last), and one
  that loads what `models.config` lists (the policy the config file sets).
  """
  root = object_store.local(model_base_dir)
  if not os.path.isdir(root):
    return []
  expected = _relative_files(model_dir)
  candidates = {name for name in os.listdir(root)
                if name.isdigit() and os.path.exists(os.path.join(root, name,
                                                                  serving.SAVED_MODEL_FILE))}
  served = serving_config.read_served_versions(root)
  candidates |= {str(v) for v in (served.versions() if served else ())}
  problems = []
  for name in sorted(candidates):
    present = _relative_files(os.path.join(root, name))
    if not expected <= present:
      problems.append(f'{name} lacks {sorted(expected - present)}')
      continue
    for relpath in expected:
      with open(os.path.join(model_dir, relpath), 'rb') as a, open(
          os.path.join(root, name, relpath), 'rb') as b:
        if a.read() != b.read():
          problems.append(f'{name}/{relpath} differs')
  return problems


@pytest.fixture()
def object_store_base(tmp_path):
  """A model base directory on the fake object store, checked after every object change."""
  object_store.HOOKS.writes = 0
  object_store.HOOKS.fail_after_writes = None
  yield object_store.SCHEME + str(tmp_path / 'store' / 'serving' / names.MODEL_NAME)
  object_store.HOOKS.on_change = None
  object_store.HOOKS.fail_after_writes = None


def _watch(model_base_dir: str, model_dir: str):
  checks, problems = [], []

  def check():
    checks.append(1)
    problems.extend(_half_models(model_base_dir, model_dir))

  object_store.HOOKS.on_change = check
  return checks, problems


def test_object_store_push_rollback_and_promote_never_show_a_half_model(
    exported, tmp_path, object_store_base):
  model_dir = str(tmp_path / 'model' / 'Format-Serving')
  io_utils.copy_dir(exported.saved_model_dir, model_dir)
  checks, problems = _watch(object_store_base, model_dir)
  for push in range(3):
    _run_executor(model_dir, object_store_base, keep=2,
                  pushed_uri=str(tmp_path / f'pushed_{push}'))
  versions = serving_dir.served_versions(object_store_base)
  serving_ops.stage_canary(object_store_base, versions[1])
  serving_ops.promote(object_store_base, versions[1])
  serving_ops.promote(object_store_base, versions[2])
  assert len(versions) == 3       # the 2 newest and the first, still stable
  assert len(checks) > 50, 'every object written or deleted was checked'
  assert problems == []


def test_the_object_store_check_catches_a_naive_copy(exported, tmp_path,
                                                     object_store_base):
  """Copying straight into a numbered folder, as TFX's Pusher does, is caught."""
  checks, problems = _watch(object_store_base, exported.saved_model_dir)
  io_utils.copy_dir(exported.saved_model_dir, object_store_base + '/5')
  assert checks and problems


def test_a_full_disk_ends_the_push_with_advice_and_leaves_nothing(
    exported, tmp_path, object_store_base):
  model_dir = str(tmp_path / 'model' / 'Format-Serving')
  io_utils.copy_dir(exported.saved_model_dir, model_dir)
  _run_executor(model_dir, object_store_base, keep=2, pushed_uri=str(tmp_path / 'p0'))
  (served,) = serving_dir.served_versions(object_store_base)
  object_store.HOOKS.fail_after_writes = object_store.HOOKS.writes + 3
  with pytest.raises(atomic_pusher.PushError, match=r'is full; version \d+ was not '
                     r'pushed and its partial copy was removed\. Free space'):
    _run_executor(model_dir, object_store_base, keep=2, pushed_uri=str(tmp_path / 'p1'))
  assert os.listdir(object_store.local(object_store_base)) == [str(served)]
  assert serving_dir.served_model_path(object_store_base).endswith(f'/{served}')


def test_what_a_killed_push_left_is_removed_by_the_next_and_logged(
    exported, tmp_path, caplog):
  base = str(tmp_path / 'serving' / names.MODEL_NAME)
  leftovers = [os.path.join(base, '.staging-17-abc', 'variables'),
               os.path.join(base, '.removing-15-def'), os.path.join(base, '16')]
  for folder in leftovers:
    os.makedirs(folder)
  with caplog.at_level(logging.WARNING):
    pushed = atomic_pusher.push_atomically(exported.saved_model_dir, base)
  assert os.listdir(base) == [os.path.basename(pushed)]
  for name in ('.staging-17-abc', '.removing-15-def', '16'):
    assert f'removing {os.path.join(base, name)}, left by an earlier push' in caplog.text


# ---- Labels, rollback, promotion and the log ----


def test_the_first_push_is_stable_at_once_later_ones_wait_listed_and_prune_around(
    exported, tmp_path):
  model_dir = str(tmp_path / 'model' / 'Format-Serving')
  io_utils.copy_dir(exported.saved_model_dir, model_dir)
  base = str(tmp_path / 'serving' / names.MODEL_NAME)
  first = _run_executor(model_dir, base, keep=2, pushed_uri=str(tmp_path / 'p0'))
  first_version = int(first.get_string_custom_property('pushed_version'))
  assert serving_config.read_served_versions(base) == serving_config.ServedVersions(
      stable=first_version)
  second = _run_executor(model_dir, base, keep=2, pushed_uri=str(tmp_path / 'p1'))
  second_version = int(second.get_string_custom_property('pushed_version'))
  # TF Serving must load the second before `stable` may move to it.
  assert serving_config.read_served_versions(base) == serving_config.ServedVersions(
      stable=first_version, loading=(second_version,))
  assert serving_ops.pending_switch(base).version == second_version
  for push in range(2, 4):
    _run_executor(model_dir, base, keep=2, pushed_uri=str(tmp_path / f'p{push}'))
  versions = serving_dir.served_versions(base)
  assert first_version in versions and len(versions) == 3   # 2 newest + the stable
  assert second_version not in versions
  served = serving_config.read_served_versions(base)
  assert served == serving_config.ServedVersions(stable=first_version,
                                                 loading=(versions[-1],))
  log = serving_ops.read_log(base)
  assert [(c.action, c.pending_version) for c in log] == [
      ('push', None), ('push', second_version), ('push', versions[-2]),
      ('push', versions[-1])]
  assert [change.removed for change in log[-2:]] == [(), (second_version,)]


def _config(base: str, served: serving_config.ServedVersions) -> None:
  serving_config.write_config_files(names.MODEL_NAME, base, served)


def test_without_a_server_a_switch_lists_the_version_and_stays_pending(exported, tmp_path):
  base = str(tmp_path / 'serving' / names.MODEL_NAME)
  pushed = [int(os.path.basename(atomic_pusher.push_atomically(
      exported.saved_model_dir, base))) for _ in range(3)]
  _config(base, serving_config.ServedVersions(pushed[-1]))
  (change,) = serving_ops.rollback(base, pushed[0])
  assert (change.stable, change.pending_label, change.pending_version) == (
      pushed[-1], 'stable', pushed[0])
  assert serving_dir.served_model_path(base) == os.path.join(base, str(pushed[-1]))
  assert [(v.version, v.labels, v.listed) for v in serving_ops.list_versions(base)] == [
      (pushed[0], (), True), (pushed[1], (), False), (pushed[2], ('stable',), True)]
  (change,) = serving_ops.promote(base, pushed[1])     # replaces the pending rollback
  assert serving_config.read_served_versions(base) == serving_config.ServedVersions(
      pushed[-1], loading=(pushed[1],))
  assert serving_ops.pending_switch(base).action == 'promote'


@pytest.mark.parametrize('change,message', [
    (lambda base, v: serving_ops.rollback(base, v[-1]), 'is not earlier than'),
    (lambda base, v: serving_ops.rollback(base, 12), 'version 12 is not in'),
    (lambda base, v: serving_ops.promote(base, v[-1]), 'already the stable version'),
    (lambda base, v: serving_ops.stage_canary(base, v[-1]), 'is the stable version'),
])
def test_impossible_changes_are_refused_with_a_reason(exported, tmp_path, change, message):
  base = str(tmp_path / 'serving' / names.MODEL_NAME)
  versions = [int(os.path.basename(atomic_pusher.push_atomically(
      exported.saved_model_dir, base))) for _ in range(2)]
  with pytest.raises(serving_ops.ServingOpsError, match=message):
    change(base, versions)
  assert serving_ops.read_log(base) == []


# ---- TF Serving's config files ----


def _text_format_types(messages):
  """Message types for parsing TF Serving's text files: field names and types only.

  TF Serving's pip package has no Python modules for BatchingParameters and
  MonitoringConfig; text format checks names and types, not field numbers.
  """
  file_proto = descriptor_pb2.FileDescriptorProto(
      name='tf_serving_text_files.proto', package='check',
      dependency=['google/protobuf/wrappers.proto'])
  for name, fields in messages.items():
    message = file_proto.message_type.add(name=name)
    for number, (field, kind, label, type_name) in enumerate(fields, start=1):
      message.field.add(name=field, number=number, type=kind, label=label,
                        type_name=type_name)
  pool = descriptor_pool.DescriptorPool()
  pool.Add(descriptor_pb2.FileDescriptorProto.FromString(
      wrappers_pb2.DESCRIPTOR.serialized_pb))
  pool.Add(file_proto)
  factory = message_factory.MessageFactory(pool)
  return {name: factory.GetPrototype(pool.FindMessageTypeByName(f'check.{name}'))
          for name in messages}


_FIELD = descriptor_pb2.FieldDescriptorProto
_WRAPPED_INT64 = (_FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, '.google.protobuf.Int64Value')
_TF_SERVING_TEXT_FILES = _text_format_types({
    'BatchingParameters': [
        ('max_batch_size', *_WRAPPED_INT64), ('batch_timeout_micros', *_WRAPPED_INT64),
        ('max_enqueued_batches', *_WRAPPED_INT64), ('num_batch_threads', *_WRAPPED_INT64),
        ('allowed_batch_sizes', _FIELD.TYPE_INT64, _FIELD.LABEL_REPEATED, None)],
    'PrometheusConfig': [
        ('enable', _FIELD.TYPE_BOOL, _FIELD.LABEL_OPTIONAL, None),
        ('path', _FIELD.TYPE_STRING, _FIELD.LABEL_OPTIONAL, None)],
    'MonitoringConfig': [
        ('prometheus_config', _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL,
         '.check.PrometheusConfig')],
})


def test_config_files_parse_as_tf_serving_reads_them(exported, tmp_path):
  base = str(tmp_path / 'serving' / names.MODEL_NAME)
  version = int(os.path.basename(atomic_pusher.push_atomically(
      exported.saved_model_dir, base)))
  _config(base, serving_config.ServedVersions(version, canary=version - 5))
  folder = str(tmp_path / 'serving')
  config = model_server_config_pb2.ModelServerConfig()
  with open(os.path.join(folder, serving.MODELS_CONFIG_FILE)) as f:
    text_format.Parse(f.read(), config)
  (model,) = config.model_config_list.config
  assert (model.name, model.base_path, model.model_platform) == (
      names.MODEL_NAME, '/models/busi_classifier', 'tensorflow')
  assert list(model.model_version_policy.specific.versions) == [version - 5, version]
  assert dict(model.version_labels) == {'stable': version, 'canary': version - 5}

  with open(os.path.join(folder, 'batching_parameters.txt')) as f:
    batching = text_format.Parse(f.read(), _TF_SERVING_TEXT_FILES['BatchingParameters']())
  assert batching.max_batch_size.value == max(batching.allowed_batch_sizes) == 32
  assert list(batching.allowed_batch_sizes) == [1, 8, 32]
  assert batching.batch_timeout_micros.value > 0 and batching.num_batch_threads.value > 0
  with open(os.path.join(folder, 'monitoring.config')) as f:
    monitoring = text_format.Parse(f.read(), _TF_SERVING_TEXT_FILES['MonitoringConfig']())
  assert monitoring.prometheus_config.enable
  assert monitoring.prometheus_config.path == '/monitoring/prometheus/metrics'


def test_an_object_store_base_path_is_given_to_tf_serving_as_it_is():
  assert serving_config.container_base_path('gs://bucket/serving/busi_classifier/') == (
      'gs://bucket/serving/busi_classifier')
  assert serving_config.container_base_path('/home/u/outputs/serving_model/m') == '/models/m'


def test_the_baseline_follows_the_stable_label_and_a_missing_one_is_named(
    exported, tmp_path):
  """What the Evaluator compares with (serving_dir.served_model_path)."""
  base = str(tmp_path / 'serving' / names.MODEL_NAME)
  assert serving_dir.served_model_path(base) is None
  versions = [int(os.path.basename(atomic_pusher.push_atomically(
      exported.saved_model_dir, base))) for _ in range(2)]
  assert serving_dir.served_model_path(base) == os.path.join(base, str(versions[1]))
  _config(base, serving_config.ServedVersions(versions[0], loading=(versions[1],)))
  assert serving_dir.served_model_path(base) == os.path.join(base, str(versions[0]))
  _config(base, serving_config.ServedVersions(12))
  with pytest.raises(ValueError, match='serves version 12, which is not there.*repair'):
    serving_dir.served_model_path(base)
