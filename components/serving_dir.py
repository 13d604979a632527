"""TF Serving's model base directory: numbered version folders, newest served.

TF Serving loads the highest numeric sub-folder holding a SavedModel and ignores
any other name, so a push can stage under a hidden name and appear by rename.
"""

import os
from typing import List, Optional

from tfx.dsl.io import fileio

from contracts import serving


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
