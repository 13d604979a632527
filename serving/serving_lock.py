"""One change of the serving directory at a time: an flock beside `models.config`.

Two `rollback`s, or a push and a `promote`, that read the same `models.config`
and write their own would each report success while one overwrites the other.
So every change holds this lock from its first read to its last write, as a
pipeline run holds the run lock on its output folder (local_runner.py). The
kernel drops an flock when its process ends, however it ends: no stale lock.

An object store (gs://) has no flock; there changes are not serialised across
machines, and docs/serving.md says to make them from one place.
"""

import contextlib
import fcntl
import os
import time
from typing import Iterator

from serving import serving_config

LOCK_FILE = '.serving.lock'
_RETRY_S = 0.05


class LockTimeout(Exception):
  """Another change held the serving directory for longer than we may wait."""


@contextlib.contextmanager
def held(model_base_dir: str, timeout_s: float, holder: str) -> Iterator[None]:
  """Holds the serving directory's lock while the body runs; waits up to `timeout_s`."""
  folder = serving_config.config_dir(model_base_dir)
  if '://' in folder:
    yield
    return
  os.makedirs(folder, exist_ok=True)
  deadline = time.monotonic() + timeout_s
  with open(os.path.join(folder, LOCK_FILE), 'a+', encoding='utf-8') as lock:
    while True:
      try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        break
      except BlockingIOError:
        if time.monotonic() >= deadline:
          lock.seek(0)
          raise LockTimeout(
              f'{folder} is being changed by another command '
              f'({lock.read().strip() or "unknown process"}) for more than '
              f'{timeout_s:.0f} s; wait for it and retry') from None
        time.sleep(_RETRY_S)
    lock.truncate(0)
    lock.write(f'{holder}, pid {os.getpid()}\n')
    lock.flush()
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)
