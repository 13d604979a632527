"""A Pusher executor that TF Serving can never catch half-way.

TF Serving polls the model base directory and loads the highest numbered
version as soon as it appears. TFX's Pusher copies files straight into that
folder, so a poll during the copy can load a partial model. Here the model is
copied under a hidden staging name first and then renamed into place (atomic on
a local or POSIX file system), and only the newest `keep_versions` versions are
kept. Old versions leave the same way: renamed to a hidden name, then deleted,
so a poll never finds a numbered folder with half its files gone.
"""

import json
import os
import time
import uuid
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import proto_utils

from components import serving_dir

KEEP_VERSIONS_KEY = 'keep_versions'


def next_version(model_base_dir: str) -> int:
  """A Unix-time version, strictly above every version already there."""
  versions = serving_dir.served_versions(model_base_dir)
  return max([int(time.time())] + [v + 1 for v in versions])


def push_atomically(model_path: str, model_base_dir: str) -> str:
  """Copies the SavedModel to `<base>/<version>` via a staged rename; returns the path."""
  fileio.makedirs(model_base_dir)
  version = next_version(model_base_dir)
  staging = os.path.join(model_base_dir, f'.staging-{version}-{uuid.uuid4().hex}')
  io_utils.copy_dir(model_path, staging)
  destination = os.path.join(model_base_dir, str(version))
  fileio.rename(staging, destination)
  return destination


def remove_old_versions(model_base_dir: str, keep: int) -> List[int]:
  """Deletes all but the newest `keep` versions; returns the removed ones."""
  versions = serving_dir.served_versions(model_base_dir)
  removed = versions[:max(len(versions) - keep, 0)]
  for version in removed:
    doomed = os.path.join(model_base_dir, f'.removing-{version}-{uuid.uuid4().hex}')
    fileio.rename(os.path.join(model_base_dir, str(version)), doomed)
    fileio.rmtree(doomed)
  return removed


class Executor(pusher_executor.Executor):
  """Pushes a blessed model to a filesystem destination; see the module docstring."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(model_push)
      return
    push_destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], push_destination)
    custom_config = json.loads(
        exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or '{}')
    keep = custom_config[KEEP_VERSIONS_KEY]
    if keep < 1:
      raise ValueError(f'Pusher: {KEEP_VERSIONS_KEY} is {keep}; TF Serving needs '
                       'at least the pushed version kept.')
    model_base_dir = push_destination.filesystem.base_directory
    model_path = self.GetModelPath(input_dict)

    destination = push_atomically(model_path, model_base_dir)
    removed = remove_old_versions(model_base_dir, keep)
    logging.info('Model pushed to %s; removed old versions %s.', destination, removed)
    io_utils.copy_dir(model_path, model_push.uri)
    self._MarkPushed(model_push, pushed_destination=destination,
                     pushed_version=os.path.basename(destination))
