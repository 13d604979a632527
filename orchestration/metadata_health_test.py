"""ML Metadata checked against the disk before a run."""

import dataclasses

import numpy as np
from ml_metadata.proto import metadata_store_pb2

from models import operating_point
from observability import metadata_run
from observability import run_summary
from orchestration import metadata_health


def _push(store, type_id, destination):
  artifact = metadata_store_pb2.Artifact(type_id=type_id, uri='/pipeline/Pusher/1',
                                         state=metadata_store_pb2.Artifact.LIVE)
  artifact.custom_properties['pushed'].int_value = 1
  artifact.custom_properties['pushed_destination'].string_value = destination
  return store.put_artifacts([artifact])[0]


def test_a_push_whose_version_is_gone_is_no_longer_live(tmp_path):
  path = str(tmp_path / 'metadata.sqlite')
  store = metadata_run.open_store(path)
  type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(name='PushedModel'))
  kept = tmp_path / 'serving' / 'model' / '1'
  kept.mkdir(parents=True)
  present = _push(store, type_id, str(kept))
  gone = _push(store, type_id, str(tmp_path / 'serving' / 'model' / '2'))
  assert metadata_health.forget_missing_pushes(path) == [
      str(tmp_path / 'serving' / 'model' / '2')]
  states = {a.id: a.state for a in store.get_artifacts_by_id([present, gone])}
  assert states == {present: metadata_store_pb2.Artifact.LIVE,
                    gone: metadata_store_pb2.Artifact.MARKED_FOR_DELETION}
  assert metadata_health.forget_missing_pushes(path) == []


def test_a_store_that_is_not_sqlite_is_named_with_what_to_do(tmp_path):
  path = tmp_path / 'metadata.sqlite'
  assert metadata_health.store_problem(str(path)) is None
  metadata_run.open_store(str(path))
  assert metadata_health.store_problem(str(path)) is None
  path.write_bytes(b'\0garbage' * 512)
  problem = metadata_health.store_problem(str(path))
  assert 'is unreadable (file is not a database)' in problem
  assert f'mv {path} {path}.corrupt' in problem


def test_the_summary_reports_a_deleted_push_as_missing():
  summary = run_summary.RunSummary('run', [], {}, True, [], None, None,
                                   missing_push='/serving/model/3')
  assert ('Pushed: nothing on disk; /serving/model/3 was pushed but has since been '
          'deleted. Rerun to push it again.') in summary.format()


def test_the_summary_names_each_site_with_its_own_threshold():
  point = operating_point.choose(np.array([0.9, 0.6, 0.2]), np.array([True, True, False]), 0.9)
  site = dataclasses.replace(point, threshold=0.3, site='bus_bra')
  summary = run_summary.RunSummary('run', [], {}, True, [], None, None,
                                   operating_point=point,
                                   site_operating_points={'bus_bra': site},
                                   not_sure_cutoff=0.41)
  text = summary.format()
  assert (f'Operating point: {point.summary_line()}\n  site bus_bra: {site.summary_line()}\n'
          'Not sure: flagged when 1 - the largest score reaches 0.4100 (the least sure 20% '
          'of the eval split)') in text
