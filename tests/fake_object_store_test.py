"""The fake bucket and the launcher's object-store steps, on a few files."""

import os

import pytest

from tests import fake_object_store

MODEL = 'gs://busi-bucket/tfx/run/Trainer/model'


@pytest.fixture
def bucket(tmp_path):
  store = fake_object_store.FolderBucket(str(tmp_path / 'store'))
  for relative in ('model/Format-Serving/saved_model.pb', 'model_run/logs/events'):
    path = os.path.join(store.path('gs://busi-bucket/tfx/run/Trainer'), relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
      f.write(relative)
  os.makedirs(store.path(MODEL + '/Format-Serving/assets'))
  return store


def test_files_are_objects_and_an_empty_folder_is_its_marker(bucket):
  assert [stored.name for stored in bucket.list('busi-bucket', 'tfx/run/Trainer/model')] == [
      'tfx/run/Trainer/model/Format-Serving/assets/',
      'tfx/run/Trainer/model/Format-Serving/saved_model.pb',
      'tfx/run/Trainer/model_run/logs/events']


def test_before_2_17_a_sibling_the_key_prefixes_lands_beside_the_artifact(bucket, tmp_path):
  local = fake_object_store.local_path_for_uri(MODEL, str(tmp_path / 'container'))
  assert local == str(tmp_path / 'container/gcs/busi-bucket/tfx/run/Trainer/model')
  fake_object_store.download_blob(bucket, MODEL, local, only_below_key=False)
  assert os.path.isfile(os.path.join(local, 'Format-Serving', 'saved_model.pb'))
  # The empty folder's marker became an empty file.
  assert os.path.isfile(os.path.join(local, 'Format-Serving', 'assets'))
  assert os.path.isfile(os.path.join(os.path.dirname(local), 'model_run', 'logs', 'events'))


def test_from_2_17_only_the_key_and_below_are_downloaded(bucket, tmp_path):
  local = str(tmp_path / 'container' / 'model')
  fake_object_store.download_blob(bucket, MODEL, local, only_below_key=True)
  assert os.path.isfile(os.path.join(local, 'Format-Serving', 'saved_model.pb'))
  assert not os.path.exists(str(tmp_path / 'container' / 'model_run'))


def test_uploads_copy_what_the_task_wrote_and_skip_what_it_did_not(bucket, tmp_path):
  log = tmp_path / 'executor-logs'
  log.write_text('log')
  logs_uri = 'gs://busi-bucket/tfx/run/Trainer/executor-logs'
  assert fake_object_store.upload_blob(bucket, str(log), logs_uri)
  with open(bucket.path(logs_uri)) as f:
    assert f.read() == 'log'
  assert not fake_object_store.upload_blob(bucket, str(tmp_path / 'never-written'), MODEL)


def test_a_local_uri_has_no_local_path_in_the_launcher():
  with pytest.raises(fake_object_store.UnsupportedScheme, match='unsupported storage scheme'):
    fake_object_store.local_path_for_uri('/pipeline_root/Trainer/model', '/')


def test_paths_in_the_bucket_map_back_to_their_uris(bucket):
  assert bucket.uri(bucket.path(MODEL)) == MODEL
  assert bucket.uri('/elsewhere/file') == '/elsewhere/file'
