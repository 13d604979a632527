"""TF Serving's model base directory: numbered version folders, one of them served.

TF Serving ignores any sub-folder whose name is not a number, so a push can
stage under a hidden name. Which version is served: the `stable` label of the
`models.config` beside the folder (serving/serving_config.py) when there is
one, else the highest version, as TF Serving's default policy has it.
"""

import os
from typing import List, Optional, Sequence

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
        f'{served.stable}, which is not there; run `make serving ARGS=repair` to '
        'rebuild it from the kept versions and the serving log.')
  return os.path.join(model_base_dir, str(served.stable))


def version_to_read(model_dir: str) -> str:
  """`model_dir` itself when it holds a SavedModel, else the version served below it.

  For the programs that take a model folder (`predict`, `site_threshold`):
  either a version folder or a model's base folder. ValueError says what is
  missing.
  """
  if os.path.isfile(os.path.join(model_dir, serving.SAVED_MODEL_FILE)):
    return model_dir
  version = served_model_path(model_dir)
  if version is None:
    raise ValueError('no SavedModel there, nor in a numbered version folder below it '
                     '(run `make run` first?)')
  return version


def old_versions(model_base_dir: str, keep: int, protected: Sequence[int] = ()) -> List[int]:
  """All but the newest `keep` versions, less the `protected` (listed) ones."""
  versions = served_versions(model_base_dir)
  return [v for v in versions[:max(len(versions) - keep, 0)] if v not in protected]


def remove_versions(model_base_dir: str, versions: Sequence[int]) -> None:
  """Deletes versions `models.config` no longer lists, `saved_model.pb` first."""
  for version in versions:
    version_dir = os.path.join(model_base_dir, str(version))
    fileio.remove(os.path.join(version_dir, serving.SAVED_MODEL_FILE))
    fileio.rmtree(version_dir)
