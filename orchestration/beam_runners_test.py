"""Beam arguments per runner: what each adds, what each refuses to start without."""

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from tfx.components.statistics_gen import executor as statistics_gen_executor
from tfx.dsl.components.base import base_beam_executor
from tfx.utils import dependency_utils

from orchestration import beam_runners

IMAGE = 'registry.example/busi-tfx:abc123'


def options(args):
  """Parsed by Beam itself, so a misspelt option name fails here, not in a pod."""
  return PipelineOptions(list(args)).get_all_options(retain_unknown_options=True)


def test_direct_runner_uses_processes_sized_to_the_pod():
  parsed = options(beam_runners.beam_pipeline_args('DirectRunner', [], IMAGE, 3))
  assert parsed['runner'] is None   # Beam's default: DirectRunner
  assert parsed['direct_running_mode'] == 'multi_processing'
  assert parsed['direct_num_workers'] == 3


def test_dataflow_workers_run_the_pipeline_image():
  parsed = options(beam_runners.beam_pipeline_args('DataflowRunner', [
      '--project=p', '--region=europe-west4', '--temp_location=gs://b/tmp'], IMAGE, 2))
  assert parsed['runner'] == 'DataflowRunner'
  assert parsed['sdk_container_image'] == IMAGE
  assert (parsed['project'], parsed['region']) == ('p', 'europe-west4')


def test_portable_job_server_workers_run_the_pipeline_image_unless_told_otherwise():
  parsed = options(beam_runners.beam_pipeline_args(
      'PortableRunner', ['--job_endpoint=flink-jobserver:8099'], IMAGE, 2))
  assert parsed['job_endpoint'] == 'flink-jobserver:8099'
  assert (parsed['environment_type'], parsed['environment_config']) == ('DOCKER', IMAGE)
  external = options(beam_runners.beam_pipeline_args('PortableRunner', [
      '--job_endpoint=spark-jobserver:8099', '--environment_type=EXTERNAL',
      '--environment_config=localhost:50000'], IMAGE, 2))
  assert (external['environment_type'], external['environment_config']) == (
      'EXTERNAL', 'localhost:50000')


@pytest.mark.parametrize('runner, args, missing', [
    ('DataflowRunner', ['--project=p'], '--beam-arg=--region=...'),
    ('PortableRunner', [], '--beam-arg=--job_endpoint=...'),
    ('SparkOnMars', [], '--beam-runner must be one of'),
])
def test_missing_runner_options_are_named(runner, args, missing):
  with pytest.raises(beam_runners.BeamArgsError, match=missing.replace('.', r'\.')):
    beam_runners.beam_pipeline_args(runner, args, IMAGE, 2)


@pytest.mark.parametrize('endpoint', ['embed', 'localhost:8099'])
def test_portable_loopback_runs_the_workers_in_the_submitting_process(endpoint):
  parsed = options(beam_runners.portable_loopback_args(endpoint))
  assert (parsed['runner'], parsed['job_endpoint'], parsed['environment_type']) == (
      'PortableRunner', endpoint, 'LOOPBACK')


def test_a_local_run_keeps_one_worker_in_process_and_more_in_processes():
  in_process = options(beam_runners.local_direct_args(1))
  assert (in_process['direct_running_mode'], in_process['direct_num_workers']) == (
      'in_memory', 1)
  per_core = options(beam_runners.local_direct_args(0))
  assert (per_core['direct_running_mode'], per_core['direct_num_workers']) == (
      'multi_processing', 0)


@pytest.mark.parametrize('args', [beam_runners.local_direct_args(1),
                                  beam_runners.beam_pipeline_args('DirectRunner', [], IMAGE, 1)])
def test_in_process_beam_does_not_make_tfx_package_itself(args, monkeypatch):
  def packaged():
    raise AssertionError('TFX copied its installation into /tmp for remote workers')

  monkeypatch.setattr(dependency_utils, 'build_ephemeral_package', packaged)
  executor = statistics_gen_executor.Executor(
      base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=list(args)))
  assert executor._beam_pipeline_args == []   # pylint: disable=protected-access
