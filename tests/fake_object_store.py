"""A gs:// bucket in a local folder, and what KFP's launcher does with it around a task.

KFP's launcher (backend/src/v2/component/launcher_v2.go, tags 2.5.0 to 2.17.0)
touches the object store three times per task, outside the task's own code:

1. before the command, every input artifact is downloaded to its local path,
   `/gcs/BUCKET/KEY` for `gs://BUCKET/KEY` (LocalPathForURI; downloadArtifacts
   and objectstore DownloadBlob: every object listed under the key as a plain
   prefix, written to its path relative to the key);
2. before the command, the parent folder of every output's local path is
   created (prepareOutputFolders), and a URI of any other scheme than gs://,
   s3://, minio:// or oci:// fails the task ("unsupported storage scheme"):
   a local pipeline root cannot run on any KFP backend;
3. after the command, every output's local path is uploaded to its key
   (uploadOutputArtifacts, objectstore UploadBlob); a path the task never
   wrote is skipped with a warning. TFX's executors write to the artifact's
   URI themselves, so only `executor-logs` (the task's log, which the launcher
   writes to its local path) is uploaded.

The bucket is a folder, `ROOT/BUCKET/KEY` for `gs://BUCKET/KEY`: every file
is an object, and an empty folder is a zero-byte marker object `KEY/`, the
trace TensorFlow's GCS file system leaves of an empty folder it created (the
markers of non-empty folders are removed by the entrypoint; see
orchestration/kubeflow/directory_markers.py). TFX's own reads and writes of
gs:// cannot be pointed at this folder (see docs/kubeflow.md, "What was and
was not verified here"), so the emulator hands the task the folder's path in
place of each gs:// URI and maps it back in what the task reports.
"""

import dataclasses
import os
import shutil
from typing import Iterator, Tuple

GCS = 'gs://'
# LocalPathForURI's local roots, by scheme.
LOCAL_ROOTS = {'gs://': 'gcs', 's3://': 's3', 'minio://': 'minio', 'oci://': 'oci'}


class UnsupportedScheme(ValueError):
  """prepareOutputFolders' refusal of an output URI that is no object store's."""


@dataclasses.dataclass(frozen=True)
class StoredObject:
  name: str
  size: int


def split(uri: str) -> Tuple[str, str]:
  """gs://BUCKET/KEY -> (BUCKET, KEY)."""
  if not uri.startswith(GCS):
    raise ValueError(f'not a gs:// URI: {uri}')
  bucket, _, key = uri[len(GCS):].partition('/')
  return bucket, key


def local_path_for_uri(uri: str, mount_root: str) -> str:
  """LocalPathForURI, with the container's `/` at `mount_root`."""
  for scheme, local_root in LOCAL_ROOTS.items():
    if uri.startswith(scheme):
      return os.path.join(mount_root, local_root, uri[len(scheme):])
  raise UnsupportedScheme(
      f'failed to generate local path for URI {uri}: unsupported storage scheme')


class FolderBucket:
  """gs:// objects as the files (and empty folders) below `root`."""

  def __init__(self, root: str):
    self.root = root
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o777)

  def path(self, uri: str) -> str:
    """The local path that stands for `uri` (gs://BUCKET/KEY)."""
    bucket, key = split(uri)
    return os.path.join(self.root, bucket, key)

  def uri(self, path: str) -> str:
    """The gs:// URI a path below the bucket folder stands for; other paths unchanged."""
    relative = os.path.relpath(path, self.root)
    if relative.startswith('..'):
      return path
    return GCS + relative.replace(os.sep, '/')

  def list(self, bucket: str, prefix: str) -> Iterator[StoredObject]:
    """The objects whose names start with `prefix`, in name order, as GCS lists them."""
    top = os.path.join(self.root, bucket)
    names = []
    for folder, subfolders, files in os.walk(top):
      relative = os.path.relpath(folder, top).replace(os.sep, '/')
      base = '' if relative == '.' else relative + '/'
      if base and not subfolders and not files:
        names.append((base, 0))
      names += [(base + name, os.path.getsize(os.path.join(folder, name))) for name in files]
    for name, size in sorted(names):
      if name.startswith(prefix):
        yield StoredObject(name, size)

  def read(self, bucket: str, name: str) -> bytes:
    if name.endswith('/'):
      return b''
    with open(os.path.join(self.root, bucket, name), 'rb') as f:
      return f.read()

  def write(self, bucket: str, name: str, local_file: str) -> None:
    target = os.path.join(self.root, bucket, name)
    # Folders open to the tasks' own user, who writes below them too.
    umask = os.umask(0)
    try:
      os.makedirs(os.path.dirname(target), mode=0o777, exist_ok=True)
    finally:
      os.umask(umask)
    shutil.copyfile(local_file, target)


def download_blob(store: FolderBucket, uri: str, local_dir: str,
                  only_below_key: bool) -> None:
  """objectstore DownloadBlob of `uri` to `local_dir`.

  The objects are listed by the key as a plain prefix. Before 2.17 every
  listed object is written to its path relative to the key, so a sibling
  whose name merely starts with the key (`model_run` beside `model`) lands
  beside `local_dir`; from 2.17 (`only_below_key`) only the key itself and
  what lies below `KEY/` are written (isBlobKeyUnderPrefix). A marker
  object `a/` is written as an empty file `a`, as os.Create writes it.
  """
  bucket, key = split(uri)
  key = key.rstrip('/')
  for stored in store.list(bucket, key):
    if only_below_key and not (stored.name == key or stored.name.startswith(key + '/')):
      continue
    local_path = os.path.normpath(os.path.join(local_dir, os.path.relpath(stored.name, key)))
    os.makedirs(os.path.dirname(local_path), exist_ok=True)
    with open(local_path, 'wb') as f:
      f.write(store.read(bucket, stored.name))


def upload_blob(store: FolderBucket, local_path: str, uri: str) -> bool:
  """objectstore UploadBlob of `local_path` to `uri`; False when there is nothing there."""
  if not os.path.exists(local_path):
    return False
  bucket, key = split(uri)
  if not os.path.isdir(local_path):
    store.write(bucket, key, local_path)
    return True
  for folder, _, files in os.walk(local_path):
    relative = os.path.relpath(folder, local_path)
    for name in files:
      object_key = '/'.join(part for part in (key, relative, name) if part != '.')
      store.write(bucket, object_key, os.path.join(folder, name))
  return True
