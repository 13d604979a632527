"""Failures of the machine, not of the data or the code, as one line of advice.

A full disk surfaces as whatever the writer raises: an OSError with ENOSPC
from Python, a TensorFlow error whose message says so from a SavedModel or
TFRecord writer, or a SQLite error from ML Metadata. The cause is looked for
along the whole chain of exceptions, so the wrapping an orchestrator adds does
not hide it.
"""

import errno
from typing import Iterator, Optional

_DISK_FULL_TEXTS = ('no space left on device', 'database or disk is full',
                    'disk quota exceeded')


def _chain(error: BaseException) -> Iterator[BaseException]:
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    yield error
    error = error.__cause__ or error.__context__


def _is_disk_full(error: BaseException) -> bool:
  if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
    return True
  return any(text in str(error).lower() for text in _DISK_FULL_TEXTS)


def advice(error: BaseException, output_dir: str) -> Optional[str]:
  """What to do about `error`, or None when it is not a failure this knows."""
  for cause in _chain(error):
    if _is_disk_full(cause):
      detail = ' '.join(str(cause).split())[:200]
      return (f'The disk is full ({detail}). Free space on the disk that holds '
              f'{output_dir}, or pass another --output-dir, and rerun: the '
              'components that finished are reused from the cache.')
  return None
