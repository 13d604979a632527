"""The pipeline's Beam components through Beam's PortableRunner, on this machine.

`--beam-runner portable --job-endpoint embed` submits every Beam job
(ImageExampleGen, StatisticsGen, Transform, the Evaluator) through the
portable job API that Flink's and Spark's job servers implement, to Beam's
embedded job service, with the SDK workers in this process (LOOPBACK).
"""

from apache_beam.runners.portability import portable_runner
import pytest

import local_runner
from bench import synthetic_busi


@pytest.fixture
def portable_jobs(monkeypatch):
  """Counts the jobs the PortableRunner runs (it still runs them)."""
  jobs = []
  run_pipeline = portable_runner.PortableRunner.run_pipeline

  def counting(self, pipeline, options):
    jobs.append(pipeline)
    return run_pipeline(self, pipeline, options)

  monkeypatch.setattr(portable_runner.PortableRunner, 'run_pipeline', counting)
  return jobs


def test_the_data_components_run_on_the_portable_runner(tmp_path, portable_jobs, capsys):
  data = synthetic_busi.write_dataset(str(tmp_path / 'data'), per_class=10)
  assert local_runner.main([
      '--data-root', data, '--output-dir', str(tmp_path / 'out'), '--image-size', '32',
      '--epochs', '1', '--min-accuracy', '0', '--min-malignant-recall', '0',
      '--beam-runner', 'portable', '--job-endpoint', 'embed']) == 0
  assert 'Blessed: yes' in capsys.readouterr().out
  # ImageExampleGen, StatisticsGen, Transform (analyse, then transform) and the Evaluator.
  assert len(portable_jobs) >= 4


@pytest.mark.parametrize('endpoint', ['localhost', 'localhost:port', ':8099'])
def test_a_job_endpoint_without_host_and_port_is_a_usage_error(endpoint, capsys):
  with pytest.raises(SystemExit) as exit_info:
    local_runner.parse_args(['--beam-runner', 'portable', '--job-endpoint', endpoint])
  assert exit_info.value.code == 2
  assert '--job-endpoint takes HOST:PORT' in capsys.readouterr().err.splitlines()[-1]
