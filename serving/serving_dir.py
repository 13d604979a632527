"""TF Serving's model base directory: numbered version folders, one of them served.

TF Serving ignores any sub-folder whose name is not a number, so a push can
stage under a hidden name. Which version is served: the `stable` label of the
`models.config` beside the folder (serving/serving_config.py) when there is
one, else the highest version, as TF Serving's default policy has it.
"""

import os
from typing import List, Optional

from tfx.dsl.io import fileio

from contracts import serving
from serving import serving_config


def served_versions(model_base_dir: str) -> List[int]:
  """Version numbers TF Serving would consider, ascending."""
  if not fileio.isdir(model_base_dir):
    return []
  versions = []
  for entry in fileio.listdir(model_base_dir):
    name = entry.rstrip('/')
    if name.isdigit() and fileio.exists(
        os.path.join(model_base_dir, name, serving.SAVED_MODEL_FILE)):
      versions.append(int(name))
  return sorted(versions)


def latest_model_path(model_base_dir: str) -> Optional[str]:
  """The SavedModel TF Serving serves now, or None when nothing is pushed yet."""
  versions = served_versions(model_base_dir)
  return os.path.join(model_base_dir, str(versions[-1])) if versions else None


def served_model_path(model_base_dir: str) -> Optional[str]:
  """The version TF Serving serves as `stable`, or None when nothing is pushed yet.

  The Evaluator compares against this one and `predict` calls it, so after a
  rollback both follow the rolled-back version, not the newest folder.
  """
  served = serving_config.read_served_versions(model_base_dir)
  if served is None:
    return latest_model_path(model_base_dir)
  if served.stable not in served_versions(model_base_dir):
    raise ValueError(
        f'{model_base_dir}: {serving.MODELS_CONFIG_FILE} serves version '
        f'{served.stable}, which is not there; run `make serving ARGS=list` and '
        '`make serving ARGS="promote VERSION"` with a version that is.')
  return os.path.join(model_base_dir, str(served.stable))
