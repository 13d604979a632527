"""A Pusher that TF Serving can never catch half-way, on local disks and object stores.

TF Serving polls the model base directory. TFX's Pusher copies files straight
into a numbered folder, so a poll during the copy can find a partial model; and
on object stores (gs://) there is no folder rename to hide the copy behind. So
a push here goes:

1. every file but `saved_model.pb` (plus the model card) is copied under a
   hidden staging name, which TF Serving ignores (not a number);
2. on a local disk `saved_model.pb` is added and the folder is renamed to the
   version number, in one atomic step. An object store has no folder rename:
   there the staging folder is copied file by file to the version number while
   it is not yet a SavedModel (no `saved_model.pb`), and `saved_model.pb` is
   written last, one object, seen whole or not at all;
3. TF Serving's `models.config` is rewritten to list the new version
   (serving/serving_config.py): a server started with that file loads only
   the versions it lists, so it never even looks at steps 1 and 2. The first
   push labels it `stable` at once; a later one leaves `stable` where it is
   until the server has loaded the new version, as TF Serving requires, and
   `make serving ARGS="--server URL complete"` moves it (serving/serving_ops.py).

All three steps and the pruning hold the serving directory's lock
(serving/serving_lock.py), so a `rollback` or `promote` never interleaves.

Old versions beyond `keep_versions` leave in the reverse order: dropped from
`models.config` first, then `saved_model.pb` deleted, then the rest. The
labelled versions (`stable`, `canary`) and the new one are never pruned. A push
that fails removes what it staged, and every push first removes what an
earlier, killed push left, saying so in the log. A full disk ends in
`PushError` with advice.
"""

import errno
import json
import os
import re
import time
import uuid
from typing import Any, Dict, List, Mapping, Optional, Tuple

from absl import logging
import tensorflow as tf
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import io_utils
from tfx.utils import json_utils
from tfx.utils import proto_utils

from blessing import evaluation_metrics
from blessing import rules as rules_lib
from blessing import site_gate
from contracts import metric_values
from contracts import names
from contracts import serving
from models import operating_point
from serving import model_card
from serving import serving_config
from serving import serving_dir
from serving import serving_lock
from serving import serving_ops

KEEP_VERSIONS_KEY = 'keep_versions'
# The Pusher's custom_config keys for the model card. The floors and the
# training configuration come from the run itself: the blessing and the model
# record what this run applied (names.BLESSING_RULES_PROPERTY,
# names.TRAINING_CONFIG_PROPERTY), which a run parameter may have changed.
CLASS_NAMES_KEY = 'class_names'
TEST_SPLIT_KEY = 'test_split'
# Optional inputs beside TFX's Pusher's model and blessing.
EVALUATION_KEY = 'evaluation'
EXAMPLES_KEY = 'examples'
# ExampleGen's fingerprint of its input, on its Examples artifact.
INPUT_FINGERPRINT_PROPERTY = 'input_fingerprint'

STAGING_PREFIX = '.staging-'
REMOVING_PREFIX = '.removing-'


class PushError(RuntimeError):
  """The push did not happen; nothing half-written is left, and the message says why."""


def next_version(model_base_dir: str) -> int:
  """A Unix-time version, strictly above every version already there."""
  versions = serving_dir.served_versions(model_base_dir)
  return max([int(time.time())] + [v + 1 for v in versions])


def remove_leftovers(model_base_dir: str) -> List[str]:
  """Deletes what a killed push or pruning left: staging folders, half versions."""
  if not fileio.isdir(model_base_dir):
    return []
  removed = []
  for entry in sorted(fileio.listdir(model_base_dir)):
    name = entry.rstrip('/')
    path = os.path.join(model_base_dir, name)
    half_version = name.isdigit() and not fileio.exists(
        os.path.join(path, serving.SAVED_MODEL_FILE))
    if name.startswith((STAGING_PREFIX, REMOVING_PREFIX)) or half_version:
      logging.warning('Pusher: removing %s, left by an earlier push that did not '
                      'finish.', path)
      fileio.rmtree(path)
      removed.append(path)
  return removed


def _disk_full(error: Exception) -> bool:
  return ((isinstance(error, OSError) and error.errno == errno.ENOSPC)
          or isinstance(error, tf.errors.ResourceExhaustedError)
          or 'No space left on device' in str(error))


def _push_error(error: Exception, model_base_dir: str, version: int) -> PushError:
  if _disk_full(error):
    return PushError(
        f'Pusher: the disk holding {model_base_dir} is full; version {version} was '
        'not pushed and its partial copy was removed. Free space there (or lower '
        '--keep-versions) and rerun: the cached steps before the Pusher are reused.')
  return PushError(f'Pusher: could not write version {version} to {model_base_dir}: '
                   f'{error}; its partial copy was removed. The model served before '
                   'is unchanged.')


def _renames_atomically(path: str) -> bool:
  """A local folder (no URL scheme) renames in one step; object stores copy."""
  return '://' not in path


def push_atomically(model_path: str, model_base_dir: str, version: Optional[int] = None,
                    extra_files: Mapping[str, str] = None) -> str:
  """Copies the SavedModel to `<base>/<version>` in the order above; returns the path.

  `extra_files` (relative path -> text) are added to the version, e.g. the card.
  """
  fileio.makedirs(model_base_dir)
  remove_leftovers(model_base_dir)
  version = next_version(model_base_dir) if version is None else version
  staging = os.path.join(model_base_dir, f'{STAGING_PREFIX}{version}-{uuid.uuid4().hex}')
  destination = os.path.join(model_base_dir, str(version))
  saved_model_pb = os.path.join(model_path, serving.SAVED_MODEL_FILE)
  try:
    io_utils.copy_dir(model_path, staging,
                      deny_regex_patterns=[f'^{re.escape(saved_model_pb)}$'])
    for relpath, text in (extra_files or {}).items():
      fileio.makedirs(os.path.dirname(os.path.join(staging, relpath)))
      with fileio.open(os.path.join(staging, relpath), 'w') as f:
        f.write(text)
    if _renames_atomically(model_base_dir):
      fileio.copy(saved_model_pb, os.path.join(staging, serving.SAVED_MODEL_FILE))
      fileio.rename(staging, destination)
    else:
      fileio.rename(staging, destination)
      fileio.copy(saved_model_pb, os.path.join(destination, serving.SAVED_MODEL_FILE))
  except (OSError, tf.errors.OpError) as error:
    for partial in (staging, destination):
      if fileio.exists(partial):
        fileio.rmtree(partial)
    raise _push_error(error, model_base_dir, version) from None
  return destination


def _single_or_none(artifacts: Optional[List[types.Artifact]]) -> Optional[types.Artifact]:
  return artifacts[0] if artifacts else None


class Executor(pusher_executor.Executor):
  """Pushes a blessed model with its card and TF Serving's config files."""

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
    run_id = (self._context.pipeline_run_id if self._context else None) or ''

    fileio.makedirs(model_base_dir)
    try:
      with serving_lock.held(model_base_dir, serving_ops.LOCK_TIMEOUT_S,
                             f'Pusher, run {run_id or "?"}'):
        destination, change = self._push(input_dict, custom_config, model_path,
                                         model_base_dir, keep, run_id)
    except serving_lock.LockTimeout as error:
      raise PushError(f'Pusher: {error}') from None
    if change.pending_version is None:
      logging.info('Model pushed to %s and served as %s; removed old versions %s.',
                   destination, serving.STABLE_LABEL, list(change.removed))
    else:
      logging.warning(
          'Model pushed to %s and listed in %s; TF Serving loads it within its poll '
          'interval, and `make serving ARGS="--server URL complete"` then moves %s to it '
          '(still %s). Removed old versions %s.', destination, serving.MODELS_CONFIG_FILE,
          serving.STABLE_LABEL, change.stable, list(change.removed))
    io_utils.copy_dir(model_path, model_push.uri)
    self._MarkPushed(model_push, pushed_destination=destination,
                     pushed_version=os.path.basename(destination))

  def _push(self, input_dict: Dict[str, List[types.Artifact]],
            custom_config: Dict[str, Any], model_path: str, model_base_dir: str,
            keep: int, run_id: str) -> Tuple[str, serving_ops.ServingChange]:
    """Copies the version in and lists it; the caller holds the serving lock."""
    before = serving_config.read_served_versions(model_base_dir)
    version = next_version(model_base_dir)
    card = self._card(input_dict, custom_config, model_path, model_base_dir, version,
                      run_id)
    destination = push_atomically(
        model_path, model_base_dir, version,
        model_card.card_files(card) if card else None)
    try:
      change = serving_ops.serve_pushed(model_base_dir, version, before, keep, run_id)
    except (OSError, tf.errors.OpError) as error:
      raise PushError(
          f'Pusher: version {version} is in {model_base_dir}, but TF Serving\'s '
          f'config files beside it could not be written ({error}), so '
          f'{before.stable if before else "nothing"} is still served. Fix the cause and '
          f'run `make serving ARGS="promote {version}"`.') from None
    return destination, change

  def _card(self, input_dict: Dict[str, List[types.Artifact]],
            custom_config: Dict[str, Any], model_path: str, model_base_dir: str,
            version: int, run_id: str) -> Optional[model_card.ModelCard]:
    """The card from the evaluation and examples; None without them (TFX's inputs only)."""
    evaluation = _single_or_none(input_dict.get(EVALUATION_KEY))
    examples = _single_or_none(input_dict.get(EXAMPLES_KEY))
    if evaluation is None or examples is None:
      logging.warning('Pusher: no evaluation or examples given, pushing without a '
                      'model card.')
      return None
    blessing = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.MODEL_BLESSING_KEY])
    rules = rules_lib.recorded(blessing)
    model = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.MODEL_KEY])
    sites = site_gate.read(evaluation.uri)
    return model_card.ModelCard(
        model_name=serving_ops.model_name_of(model_base_dir),
        version=version,
        pushed_at=model_card.now(),
        run_id=run_id,
        data=model_card.data_summary(
            examples.uri, examples.get_string_custom_property(INPUT_FINGERPRINT_PROPERTY)),
        test_split=custom_config[TEST_SPLIT_KEY],
        test_metrics=metric_values.defined_all(evaluation_metrics.overall_metrics(
            evaluation.uri, custom_config[CLASS_NAMES_KEY])),
        floors=rules.floors,
        regression_tolerance=rules.regression_tolerance,
        baseline_version=blessing.get_string_custom_property(
            names.BASELINE_VERSION_PROPERTY),
        code_fingerprint=model_card.code_fingerprint(),
        training_config=json.loads(
            model.get_string_custom_property(names.TRAINING_CONFIG_PROPERTY)),
        site_metrics={site.site: site.metrics for site in (sites.sites if sites else ())},
        ungated_sites=[site.site for site in (sites.sites if sites else ()) if not site.gated],
        site_thresholds={site: point.threshold for site, point
                         in operating_point.read_sites(model_path).items()},
        operating_point=operating_point.read(model_path),
        started_from=model.get_string_custom_property(names.STARTED_FROM_PROPERTY))


class ServingPusherSpec(standard_component_specs.PusherSpec):
  """TFX's PusherSpec plus the evaluation and examples the model card is made from."""
  INPUTS = {
      **standard_component_specs.PusherSpec.INPUTS,
      EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation,
                                       optional=True),
      EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True),
  }


class ServingPusher(base_component.BaseComponent):
  """Pusher(model, model_blessing) + evaluation and examples for the model card."""

  SPEC_CLASS = ServingPusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel,
               evaluation: types.BaseChannel, examples: types.BaseChannel,
               push_destination: pusher_pb2.PushDestination,
               custom_config: Dict[str, Any]):
    super().__init__(spec=ServingPusherSpec(
        model=model,
        model_blessing=model_blessing,
        evaluation=evaluation,
        examples=examples,
        push_destination=push_destination,
        custom_config=json_utils.dumps(custom_config),
        pushed_model=types.Channel(type=standard_artifacts.PushedModel)))
