"""Checks that ML Metadata is readable and agrees with the disk before a run.

Two states make a rerun go wrong without them. A corrupt `metadata.sqlite`
(a disk that filled mid-write, a copy cut short) fails deep inside the
orchestrator with a database traceback. And the cache trusts a Pusher whose
output folder still exists even when the version it pushed was deleted with
the serving directory: the rerun would reuse that Pusher and report a push
that is no longer on disk. Such pushes are marked as no longer live, which
TFX's cache does not reuse, so the Pusher runs and pushes again.
"""

import contextlib
import os
import sqlite3
from typing import List, Optional

from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.io import fileio

from observability import metadata_run

_PUSHED_MODEL = 'PushedModel'


def store_problem(metadata_path: str) -> Optional[str]:
  """Why the SQLite store at `metadata_path` cannot be used, or None.

  A missing file is fine: the run creates it.
  """
  if not os.path.exists(metadata_path):
    return None
  try:
    read_only = f'file:{metadata_path}?mode=ro'
    with contextlib.closing(sqlite3.connect(read_only, uri=True)) as connection:
      result = connection.execute('PRAGMA quick_check').fetchone()
  except sqlite3.Error as e:
    detail = str(e)
  else:
    if result and result[0] == 'ok':
      return None
    detail = result[0] if result else 'no answer to an integrity check'
  return (f'The ML Metadata store {metadata_path} is unreadable ({detail}). It '
          f'holds the run history and the cache. Move it aside (mv {metadata_path} '
          f'{metadata_path}.corrupt) and rerun: the run then starts a fresh '
          'history and recomputes every component.')


def forget_missing_pushes(metadata_path: str) -> List[str]:
  """Marks live pushes whose destination is gone as not live; returns those paths."""
  if not os.path.exists(metadata_path):
    return []
  store = metadata_run.open_store(metadata_path)
  try:
    pushes = store.get_artifacts_by_type(_PUSHED_MODEL)
  except Exception:  # No push type registered yet: nothing was ever pushed.
    return []
  missing = []
  for push in pushes:
    destination = push.custom_properties.get('pushed_destination')
    pushed = push.custom_properties.get('pushed')
    if (push.state == metadata_store_pb2.Artifact.LIVE and pushed is not None
        and pushed.int_value == 1 and destination is not None
        and destination.string_value and not fileio.exists(destination.string_value)):
      push.state = metadata_store_pb2.Artifact.MARKED_FOR_DELETION
      missing.append(destination.string_value)
      store.put_artifacts([push])
  return missing
