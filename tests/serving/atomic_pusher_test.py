"""Pushes seen from TF Serving's side: a poller must only ever find whole models."""

import json
import os
import threading

import pytest
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import io_utils

from components import atomic_pusher
from components import serving_dir


def _relative_files(root: str):
  return {os.path.relpath(os.path.join(folder, name), root)
          for folder, _, names in os.walk(root) for name in names}


def _incomplete_highest_version(model_base_dir: str, expected_files) -> str:
  """What one TF Serving poll would load, if it is incomplete; else ''.

  TF Serving takes the highest numeric folder, whatever it holds. A version
  that vanished while being read was removed whole, which is allowed.
  """
  versions = [name for name in os.listdir(model_base_dir) if name.isdigit()]
  if not versions:
    return ''
  version_dir = os.path.join(model_base_dir, max(versions, key=int))
  missing = expected_files - _relative_files(version_dir)
  if missing and os.path.isdir(version_dir):
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
      atomic_pusher.remove_old_versions(model_base_dir, keep)
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
  io_utils.copy_file(os.path.join(exported.saved_model_dir, 'saved_model.pb'),
                     os.path.join(partial, 'saved_model.pb'))
  problem = _incomplete_highest_version(model_base_dir,
                                        _relative_files(exported.saved_model_dir))
  assert 'variables/variables.index' in problem


def test_keeps_only_the_newest_versions(exported, tmp_path):
  model_base_dir = str(tmp_path / 'busi_classifier')
  pushed = [int(os.path.basename(
      atomic_pusher.push_atomically(exported.saved_model_dir, model_base_dir)))
            for _ in range(4)]
  removed = atomic_pusher.remove_old_versions(model_base_dir, keep=2)
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
  assert len(versions) == 2
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
