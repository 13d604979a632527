"""Folder markers below a task's outputs, and KFP's launcher download they break.

Emulated, not run against a bucket: `FakeBucket` holds objects by name as GCS
does (listed in name order), with the markers TensorFlow's GCS file system
writes for each folder it creates; `kfp_download` is KFP's launcher download
of an input artifact (backend/src/v2/objectstore DownloadBlob at 2.17.0: every
object at or below the artifact's key to the same relative local path,
markers included), written against a real local folder.
"""

import os
from typing import Dict, Iterable

import pytest

from orchestration.kubeflow import directory_markers

BUCKET = 'busi-bucket'
MODEL = 'tfx/busi-ultrasound/run-1/Trainer/model'
# A Trainer's model as TensorFlow writes it to gs://: a marker per folder made.
MODEL_OBJECTS = {
    f'{MODEL}/': b'',
    f'{MODEL}/Format-Serving/': b'',
    f'{MODEL}/Format-Serving/saved_model.pb': b'graph',
    f'{MODEL}/Format-Serving/fingerprint.pb': b'fp',
    f'{MODEL}/Format-Serving/variables/': b'',
    f'{MODEL}/Format-Serving/variables/variables.index': b'index',
    f'{MODEL}/Format-Serving/variables/variables.data-00000-of-00001': b'data',
    f'{MODEL}/Format-Serving/assets/': b'',  # an empty folder: only its marker
}


class FakeBucket:
  """Objects by name; `list` in name order, as GCS lists them."""

  def __init__(self, objects: Dict[str, bytes]):
    self.objects = {BUCKET: dict(objects)}
    self.deleted = []

  def list(self, bucket: str, prefix: str) -> Iterable[directory_markers.StoredObject]:
    for name in sorted(self.objects[bucket]):
      if name.startswith(prefix):
        yield directory_markers.StoredObject(name, len(self.objects[bucket][name]))

  def delete(self, bucket: str, name: str) -> None:
    del self.objects[bucket][name]
    self.deleted.append(name)


def kfp_download(bucket: FakeBucket, blob_dir: str, local_dir: str) -> None:
  """KFP's launcher download of one input artifact to `local_dir` (2.17.0).

  Every object at the key or below `KEY/` goes to its path relative to the
  key, markers included: `KEY/` itself becomes a file at `local_dir`.
  """
  key = blob_dir.rstrip('/')
  for stored in bucket.list(BUCKET, key):
    if stored.name == key or stored.name.startswith(key + '/'):
      _download(bucket, stored.name,
                os.path.normpath(os.path.join(local_dir, os.path.relpath(stored.name, key))))


def _download(bucket: FakeBucket, name: str, local_path: str) -> None:
  os.makedirs(os.path.dirname(local_path), exist_ok=True)
  with open(local_path, 'wb') as f:
    f.write(bucket.objects[BUCKET][name])


def test_the_launcher_download_fails_on_the_markers_tensorflow_writes(tmp_path):
  with pytest.raises((NotADirectoryError, FileExistsError)):
    kfp_download(FakeBucket(MODEL_OBJECTS), MODEL, str(tmp_path / 'model'))


def test_the_artifacts_own_marker_alone_breaks_the_download(tmp_path):
  only_own = {name: data for name, data in MODEL_OBJECTS.items()
              if name == f'{MODEL}/' or not name.endswith('/')}
  with pytest.raises((NotADirectoryError, FileExistsError)):
    kfp_download(FakeBucket(only_own), MODEL, str(tmp_path / 'model'))


def test_without_the_markers_the_download_is_the_model(tmp_path):
  bucket = FakeBucket(MODEL_OBJECTS)
  removed = directory_markers.remove_below(bucket, f'gs://{BUCKET}/{MODEL}')
  assert removed == [f'{MODEL}/', f'{MODEL}/Format-Serving/',
                     f'{MODEL}/Format-Serving/variables/']
  # The empty folder keeps its marker: nothing else says it exists.
  assert f'{MODEL}/Format-Serving/assets/' in bucket.objects[BUCKET]
  local = tmp_path / 'model'
  kfp_download(bucket, MODEL, str(local))
  serving = local / 'Format-Serving'
  assert (serving / 'saved_model.pb').read_bytes() == b'graph'
  assert (serving / 'variables' / 'variables.index').read_bytes() == b'index'
  assert (serving / 'variables' / 'variables.data-00000-of-00001').read_bytes() == b'data'


def test_only_the_outputs_own_objects_are_touched():
  sibling = 'tfx/busi-ultrasound/run-1/Trainer/model_run'
  bucket = FakeBucket({**MODEL_OBJECTS, f'{sibling}/': b'', f'{sibling}/logs/': b'',
                       f'{sibling}/logs/events': b'e',
                       # A non-empty object whose name ends in a slash is data, not a marker.
                       f'{MODEL}/Format-Serving/odd/': b'x',
                       f'{MODEL}/Format-Serving/odd/y': b'y'})
  directory_markers.remove_below(bucket, f'gs://{BUCKET}/{MODEL}/')
  assert not any(name.startswith(sibling) for name in bucket.deleted)
  assert f'{MODEL}/Format-Serving/odd/' in bucket.objects[BUCKET]


def test_the_entrypoint_cleans_every_gs_output_and_nothing_else():
  bucket = FakeBucket(MODEL_OBJECTS)
  executor_input = {'outputs': {'artifacts': {
      'model': {'artifacts': [{'uri': f'gs://{BUCKET}/{MODEL}'}]},
      'model_run': {'artifacts': [{'uri': '/tmp/local/model_run'}]}}}}
  removed = directory_markers.remove_below_outputs(executor_input, bucket)
  assert len(removed) == 3


def test_local_outputs_need_no_object_store():
  class NoStore:
    def list(self, bucket, prefix):
      raise AssertionError('a local output was listed')
  executor_input = {'outputs': {'artifacts': {
      'model': {'artifacts': [{'uri': '/pipeline_root/Trainer/model'}]}}}}
  assert directory_markers.remove_below_outputs(executor_input, NoStore()) == []
