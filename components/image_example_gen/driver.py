"""ImageExampleGen's driver: fingerprints the data folder without tripping on it.

FileBasedExampleGen's driver fingerprints the input by stat-ing every file its
pattern matches, so a dangling symbolic link stops the run with a traceback
before the executor can quarantine it. This driver fingerprints the class
folders itself: an entry it cannot stat counts by its name alone, and the
executor reports it. Any added, removed or rewritten file still changes the
fingerprint, which is what invalidates the cached ExampleGen run.
"""

import hashlib
import os
from typing import Iterable, Optional, Tuple

from tfx.components.example_gen import driver
from tfx.components.example_gen import input_processor
from tfx.dsl.io import fileio
from tfx.dsl.io import filesystem
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2

# Files beside the class folders and inside them: all the executor reads.
_PATTERNS = ('*', '*/*')


def folder_fingerprint(root: str) -> str:
  digest = hashlib.sha256()
  for path in sorted({p for pattern in _PATTERNS
                      for p in fileio.glob(os.path.join(root, pattern))}):
    try:
      stat = fileio.stat(path)
      entry = f'{path}\t{stat.length}\t{stat.mtime_nsec}'
    except filesystem.NotFoundError:
      entry = f'{path}\tunreadable'
    digest.update(entry.encode('utf-8') + b'\n')
  return f'image folder {root}: sha256 {digest.hexdigest()}'


class _ImageFolderInputProcessor(input_processor.FileBasedInputProcessor):

  def resolve_span_and_version(self) -> Tuple[int, Optional[int]]:
    self._fingerprint = folder_fingerprint(self._input_base_uri)
    return 0, None


class ImageFolderDriver(driver.FileBasedDriver):
  """FileBasedDriver with the folder fingerprint above; no spans or versions."""

  def get_input_processor(
      self,
      splits: Iterable[example_gen_pb2.Input.Split],
      range_config: Optional[range_config_pb2.RangeConfig] = None,
      input_base_uri: Optional[str] = None) -> input_processor.InputProcessor:
    return _ImageFolderInputProcessor(input_base_uri, splits, range_config)
