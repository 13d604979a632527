"""A file system that behaves like an object store, for the Pusher's tests.

Registered with TFX's fileio under the `objstore://` scheme and backed by a
local folder, it has what gs:// has and lacks what gs:// lacks:

* a file written is seen whole or not at all (objects appear on close);
* there is no folder rename: renaming a folder copies it file by file, then
  deletes the originals file by file, as gsutil and TensorFlow's GCS client do;
* after every single object written or deleted it calls `on_change`, so a test
  can look at the store as a concurrent TF Serving poll would, at every step;
* `fail_after_writes` makes the n-th write fail with ENOSPC (disk full).
"""

import errno
import glob as glob_lib
import io
import os
import shutil
import tempfile
from typing import Callable, List, Optional

from tfx.dsl.io import filesystem
from tfx.dsl.io import filesystem_registry

SCHEME = 'objstore://'


class _Hooks:
  on_change: Optional[Callable[[], None]] = None
  fail_after_writes: Optional[int] = None
  writes = 0


HOOKS = _Hooks()


def local(path) -> str:
  path = path.decode() if isinstance(path, bytes) else path
  return path[len(SCHEME):] if path.startswith(SCHEME) else path


def _changed() -> None:
  if HOOKS.on_change is not None:
    HOOKS.on_change()


def _publish(data: bytes, path: str) -> None:
  """Writes one object atomically: a temporary file outside the tree, renamed."""
  HOOKS.writes += 1
  if HOOKS.fail_after_writes is not None and HOOKS.writes > HOOKS.fail_after_writes:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  handle, temporary = tempfile.mkstemp()
  with os.fdopen(handle, 'wb') as f:
    f.write(data)
  shutil.move(temporary, path)
  _changed()


class _Upload(io.BytesIO):
  """A file opened for writing: its object appears when it is closed."""

  def __init__(self, path: str, text: bool):
    super().__init__()
    self._path, self._text = path, text

  def write(self, data):  # pylint: disable=arguments-renamed
    return super().write(data.encode() if self._text else data)

  def close(self):
    if not self.closed:
      data = self.getvalue()
      super().close()
      _publish(data, self._path)


class ObjectStoreFilesystem(filesystem.Filesystem):
  SUPPORTED_SCHEMES = [SCHEME]

  @staticmethod
  def open(name, mode='r'):
    path = local(name)
    if 'w' in mode:
      return _Upload(path, 'b' not in mode)
    try:
      return open(path, mode)
    except FileNotFoundError as e:
      raise filesystem.NotFoundError() from e

  @staticmethod
  def copy(src, dst, overwrite=False):
    if not overwrite and os.path.exists(local(dst)):
      raise OSError(f'{dst} exists')
    with open(local(src), 'rb') as f:
      _publish(f.read(), local(dst))

  @staticmethod
  def exists(path):
    return os.path.exists(local(path))

  @staticmethod
  def glob(pattern):
    return [SCHEME + p for p in glob_lib.glob(local(pattern))]

  @staticmethod
  def isdir(path):
    return os.path.isdir(local(path))

  @staticmethod
  def listdir(path):
    try:
      return os.listdir(local(path))
    except FileNotFoundError as e:
      raise filesystem.NotFoundError() from e

  @staticmethod
  def makedirs(path):
    os.makedirs(local(path), exist_ok=True)

  @staticmethod
  def mkdir(path):
    os.mkdir(local(path))

  @staticmethod
  def remove(path):
    try:
      os.remove(local(path))
    except FileNotFoundError as e:
      raise filesystem.NotFoundError() from e
    _changed()

  @staticmethod
  def rename(src, dst, overwrite=False):
    source, target = local(src), local(dst)
    if not overwrite and os.path.exists(target):
      raise OSError(f'{dst} exists')
    if os.path.isfile(source):
      ObjectStoreFilesystem.copy(src, dst, overwrite=True)
      ObjectStoreFilesystem.remove(src)
      return
    files = _files(source)
    for relpath in files:
      with open(os.path.join(source, relpath), 'rb') as f:
        _publish(f.read(), os.path.join(target, relpath))
    for relpath in files:
      os.remove(os.path.join(source, relpath))
      _changed()
    shutil.rmtree(source)

  @staticmethod
  def rmtree(path):
    root = local(path)
    if not os.path.exists(root):
      raise filesystem.NotFoundError()
    for relpath in _files(root):
      os.remove(os.path.join(root, relpath))
      _changed()
    shutil.rmtree(root)

  @staticmethod
  def stat(path):
    return os.stat(local(path))

  @staticmethod
  def walk(top, topdown=True, onerror=None):
    for folder, dirs, names in os.walk(local(top), topdown=topdown, onerror=onerror):
      yield SCHEME + folder, dirs, names


def _files(root: str) -> List[str]:
  return sorted(os.path.relpath(os.path.join(folder, name), root)
                for folder, _, names in os.walk(root) for name in names)


filesystem_registry.DEFAULT_FILESYSTEM_REGISTRY.register(ObjectStoreFilesystem, priority=5)
