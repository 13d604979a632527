"""The pipeline's Beam components through Beam's PortableRunner, on this machine.

`--beam-runner portable --job-endpoint embed` submits every Beam job of the
data half (ImageExampleGen, StatisticsGen, Transform, the Evaluator) through
the portable job API that Flink's and Spark's job servers implement, to Beam's
embedded job service, with the SDK workers in this process (LOOPBACK). One run
of the DAG, from local_runner.py's flags, on the fewest scans the splits allow
at 32 pixels with the smallest network (seed_cnn: the Trainer has no Beam in
it), serves every assertion; the run report, which has no Beam in it either,
is left out.
"""

from apache_beam.runners.portability import portable_runner
import pytest

import local_runner
from orchestration import beam_runners
from orchestration import local
from tests.fixtures import synthetic_busi

pytestmark = pytest.mark.e2e


@pytest.fixture(scope='module')
def portable_run(tmp_path_factory):
  """The run's config and summary, and the jobs the PortableRunner ran (it still runs them)."""
  root = tmp_path_factory.mktemp('beam_portable')
  data = synthetic_busi.write_dataset(str(root / 'data'), per_class=5)
  args = local_runner.parse_args([
      '--data-root', data, '--output-dir', str(root / 'out'), '--model', 'seed_cnn',
      '--image-size', '32',
      '--epochs', '1', '--min-accuracy', '0', '--min-malignant-recall', '0',
      '--beam-runner', 'portable', '--job-endpoint', 'embed'])
  config = local_runner.build_config(args, data)
  jobs = []
  run_pipeline = portable_runner.PortableRunner.run_pipeline

  def counting(self, pipeline, options):
    jobs.append(pipeline)
    return run_pipeline(self, pipeline, options)

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(portable_runner.PortableRunner, 'run_pipeline', counting)
    summary = local.run(config)
  return config, summary, jobs


def test_the_flags_select_the_embedded_job_service(portable_run):
  config, _, _ = portable_run
  assert config.beam_pipeline_args == beam_runners.portable_loopback_args(
      beam_runners.EMBEDDED_JOB_SERVICE)


def test_the_data_components_run_on_the_portable_runner(portable_run):
  _, summary, jobs = portable_run
  assert summary.blessed and summary.metrics
  # ImageExampleGen, StatisticsGen, Transform (analyse, then transform) and the Evaluator.
  assert len(jobs) >= 4


@pytest.mark.parametrize('endpoint', ['localhost', 'localhost:port', ':8099'])
def test_a_job_endpoint_without_host_and_port_is_a_usage_error(endpoint, capsys):
  with pytest.raises(SystemExit) as exit_info:
    local_runner.parse_args(['--beam-runner', 'portable', '--job-endpoint', endpoint])
  assert exit_info.value.code == 2
  assert '--job-endpoint takes HOST:PORT' in capsys.readouterr().err.splitlines()[-1]
