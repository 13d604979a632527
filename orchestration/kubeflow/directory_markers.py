"""Zero-byte `dir/` marker objects removed from below a task's outputs.

TensorFlow's GCS file system creates a folder by writing an empty object named
after it with a trailing slash (`.../variables/`), and TFX's executors create
their folders through it, so every folder of an artifact on gs:// has one.
KFP's launcher downloads each input artifact of a task before the task's
command starts (backend/src/v2/objectstore: it lists the objects below the
artifact and writes each to the same relative local path): a nested marker
becomes an empty *file* `variables`, and the objects below it then cannot be
written (`not a directory`), so the task fails before any of its code runs.
The artifact's own marker (`KEY/`) is written as a file at the artifact's
local path itself, so nothing below it can be written either (every version
from 2.5.0 to 2.17.0).

The fix sits on the producer's side: once a task's executor has finished,
the entrypoint removes the markers below each of its output artifacts, so the
consumer's launcher never sees one. A marker with nothing else below it is
kept: it is the only trace of an empty folder. Readers are unaffected:
object stores have no folders, and TensorFlow lists a prefix with objects
below it as a folder with or without its marker. Only gs:// is handled: the
image reads and writes no other object store (s3:// would need
tensorflow-io), and local paths hold real folders.
"""

import dataclasses
from typing import Any, Dict, Iterable, List, Optional, Protocol, Tuple

GCS_SCHEME = 'gs://'


@dataclasses.dataclass(frozen=True)
class StoredObject:
  name: str
  size: int


class ObjectStore(Protocol):
  """The two calls this module needs from a bucket."""

  def list(self, bucket: str, prefix: str) -> Iterable[StoredObject]:
    ...

  def delete(self, bucket: str, name: str) -> None:
    ...


class GcsObjectStore:
  """Google Cloud Storage through google-cloud-storage (in requirements.lock)."""

  def __init__(self):
    from google.cloud import storage  # pylint: disable=g-import-not-at-top
    self._client = storage.Client()

  def list(self, bucket: str, prefix: str) -> Iterable[StoredObject]:
    for blob in self._client.list_blobs(bucket, prefix=prefix):
      yield StoredObject(blob.name, blob.size or 0)

  def delete(self, bucket: str, name: str) -> None:
    self._client.bucket(bucket).blob(name).delete()


def split_uri(uri: str) -> Tuple[str, str]:
  """gs://bucket/a/b -> ('bucket', 'a/b/'): the bucket and the prefix of the objects below."""
  bucket, _, path = uri[len(GCS_SCHEME):].partition('/')
  return bucket, path.rstrip('/') + '/' if path else ''


def markers_to_remove(objects: Iterable[StoredObject]) -> List[str]:
  """Names of zero-byte `.../` objects that have other objects below them."""
  ordered = sorted(objects, key=lambda stored: stored.name)
  # In name order, whatever lies below `a/b/` comes right after it.
  return [stored.name for stored, following in zip(ordered, ordered[1:])
          if stored.name.endswith('/') and stored.size == 0
          and following.name.startswith(stored.name)]


def remove_below(store: ObjectStore, uri: str) -> List[str]:
  """Removes the markers below `uri` (gs://...), its own included; returns their names."""
  bucket, prefix = split_uri(uri)
  removed = markers_to_remove(store.list(bucket, prefix))
  for name in removed:
    store.delete(bucket, name)
  return removed


def output_uris(executor_input: Dict[str, Any]) -> List[str]:
  """The URIs of a task's output artifacts, from KFP's executor input."""
  return [artifact['uri']
          for artifact_list in executor_input.get('outputs', {}).get('artifacts', {}).values()
          for artifact in artifact_list.get('artifacts', [])]


def remove_below_outputs(executor_input: Dict[str, Any],
                         store: Optional[ObjectStore] = None) -> List[str]:
  """Removes the markers below each gs:// output artifact; returns their names."""
  gcs_uris = [uri for uri in output_uris(executor_input) if uri.startswith(GCS_SCHEME)]
  if not gcs_uris:
    return []
  store = store or GcsObjectStore()
  return [name for uri in gcs_uris for name in remove_below(store, uri)]
