"""--submit and --schedule, through the kfp SDK, against a recording KFP REST endpoint."""

import socket

import kfp
import pytest

import kubeflow_runner
from orchestration.kubeflow import configs as kubeflow_configs
from tests.fake_kfp_server import FakeKfpServer
from tests import fake_vertex_api
from tests.kubeflow_runner_test import PIPELINE_ROOT, REQUIRED_FLAGS

CRON = '0 0 3 * * 1'


@pytest.fixture(autouse=True)
def no_local_kfp_context(tmp_path, monkeypatch):
  """The SDK reads a namespace from ~/.config/kfp; this machine's must not count."""
  monkeypatch.setattr(kfp.Client, '_LOCAL_KFP_CONTEXT', str(tmp_path / 'context.json'))


@pytest.fixture
def server():
  with FakeKfpServer() as fake:
    yield fake


def run_runner(server, tmp_path, *flags):
  package = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + [
      '--output', str(package), '--host', server.url, *flags]) == 0
  return package.read_bytes()


def test_submit_uploads_the_package_and_runs_that_version(server, tmp_path):
  package = run_runner(server, tmp_path, '--submit', '--experiment', 'busi-nightly')

  [upload] = server.find('POST', '/pipelines/upload')
  assert upload.query['name'] == kubeflow_configs.PIPELINE_NAME
  assert upload.files['uploadfile'] == package
  [experiment] = server.find('POST', '/experiments')
  assert experiment.json['display_name'] == 'busi-nightly'
  [run] = server.find('POST', '/runs')
  assert run.json['experiment_id'] == 'experiment-1'
  assert run.json['pipeline_version_reference'] == {
      'pipeline_id': 'pipeline-1', 'pipeline_version_id': 'version-1'}
  assert 'pipeline_spec' not in run.json
  assert not server.find('POST', '/recurringruns')


def test_schedule_uploads_a_new_version_and_retrains_on_the_cron(server, tmp_path):
  run_runner(server, tmp_path, '--submit')
  package = run_runner(server, tmp_path, '--schedule', CRON)

  [new_version] = server.find('POST', '/pipelines/upload_version')
  assert new_version.query['pipelineid'] == 'pipeline-1'
  assert new_version.query['name'].startswith(f'{kubeflow_configs.PIPELINE_NAME}-')
  assert new_version.files['uploadfile'] == package
  [recurring] = server.find('POST', '/recurringruns')
  assert recurring.json['trigger'] == {'cron_schedule': {'cron': CRON}}
  assert int(recurring.json['max_concurrency']) == 1
  assert recurring.json['no_catchup'] is True
  assert recurring.json['mode'] == 'ENABLE'
  assert recurring.json['pipeline_version_reference'] == {
      'pipeline_id': 'pipeline-1', 'pipeline_version_id': 'version-2'}
  assert len(server.find('POST', '/runs')) == 1  # only the earlier --submit


def test_run_parameters_go_to_the_run_and_the_recurring_run(server, tmp_path):
  run_runner(server, tmp_path, '--submit', '--schedule', CRON, '--param', 'epochs=5',
             '--param', 'min_accuracy=0.9', '--param', 'data_root=gs://b/new')
  expected = {'epochs': 5, 'min_accuracy': 0.9, 'data_root': 'gs://b/new'}
  [run] = server.find('POST', '/runs')
  [recurring] = server.find('POST', '/recurringruns')
  for created in (run, recurring):
    assert created.json['runtime_config']['parameters'] == expected


def test_an_unreachable_host_is_a_one_line_error(tmp_path, capsys):
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    closed_port = probe.getsockname()[1]
  host = f'http://127.0.0.1:{closed_port}'
  assert kubeflow_runner.main(REQUIRED_FLAGS + [
      '--output', str(tmp_path / 'pipeline.yaml'), '--host', host, '--submit']) == 1
  assert f'Kubeflow Pipelines at {host}' in capsys.readouterr().err.splitlines()[-1]


def test_a_rejected_request_is_a_one_line_error_with_the_servers_reason(
    server, tmp_path, capsys):
  server.failures[('POST', '/runs')] = (400, {
      'error_message': 'Invalid input error: pipeline spec is invalid', 'code': 3})
  assert kubeflow_runner.main(REQUIRED_FLAGS + [
      '--output', str(tmp_path / 'pipeline.yaml'), '--host', server.url, '--submit']) == 1
  message = capsys.readouterr().err.splitlines()[-1]
  assert '400 Bad Request' in message and 'pipeline spec is invalid' in message


def test_multi_user_submit_sends_the_namespace_and_the_token(server, tmp_path):
  token = tmp_path / 'token'
  token.write_text('sa-token-123\n')
  run_runner(server, tmp_path, '--submit', '--namespace', 'team-imaging',
             '--token-file', str(token))
  [experiment] = server.find('POST', '/experiments')
  assert experiment.json['namespace'] == 'team-imaging'
  for request in server.requests:
    assert request.headers.get('authorization') == 'Bearer sa-token-123', request.path


def test_an_existing_experiment_id_is_used_as_is(server, tmp_path):
  run_runner(server, tmp_path, '--submit', '--schedule', CRON,
             '--experiment-id', 'experiment-from-admin')
  assert not server.find('POST', '/experiments')
  [run] = server.find('POST', '/runs')
  [recurring] = server.find('POST', '/recurringruns')
  assert run.json['experiment_id'] == recurring.json['experiment_id'] == (
      'experiment-from-admin')


def test_a_missing_token_file_is_a_usage_error(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_info:
    kubeflow_runner.parse_args(REQUIRED_FLAGS + [
        '--submit', '--host', 'http://h', '--token-file', str(tmp_path / 'none')])
  assert exit_info.value.code == 2
  assert '--token-file' in capsys.readouterr().err.splitlines()[-1]


VERTEX_FLAGS = ['--target', 'vertex', '--project', 'busi-project', '--region', 'europe-west4',
                '--service-account', 'pipeline@busi-project.iam.gserviceaccount.com']


@pytest.fixture
def offline_google_credentials(monkeypatch):
  """Application Default Credentials that need no network."""
  from google.auth import credentials as auth_credentials  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr('google.auth.default', lambda *args, **kwargs: (
      auth_credentials.AnonymousCredentials(), 'busi-project'))


@pytest.fixture
def offline_resource_manager(monkeypatch):
  """Resource Manager's project number for busi-project: the fake API's buckets' owner.

  The SDK compares it with the bucket's owner (a guard against bucket squatting);
  unanswered, the Resource Manager client retries for about 45 s.
  """
  monkeypatch.setattr(
      'google.cloud.aiplatform.utils.resource_manager_utils.get_project_number',
      lambda project_id, credentials=None: {'busi-project': fake_vertex_api.PROJECT_NUMBER}[
          project_id])


def test_vertex_runs_and_schedules_go_through_the_sdk_with_the_run_parameters(
    tmp_path, offline_google_credentials, offline_resource_manager, capsys,
    monkeypatch):  # pylint: disable=unused-argument
  package = tmp_path / 'pipeline.yaml'
  with fake_vertex_api.FakeVertexApi() as api:
    monkeypatch.setenv('STORAGE_EMULATOR_HOST', api.endpoint)
    assert kubeflow_runner.main(REQUIRED_FLAGS + VERTEX_FLAGS + [
        '--output', str(package), '--vertex-api-endpoint', api.endpoint, '--submit',
        '--schedule', 'TZ=UTC 0 3 * * 1', '--param', 'epochs=4']) == 0
  # The SDK looked up the pipeline root's bucket before it created anything.
  assert set(api.buckets_checked) == {'busi-bucket'}
  [(job_path, job), (schedule_path, schedule)] = api.created
  assert job_path == '/v1/projects/busi-project/locations/europe-west4/pipelineJobs'
  assert job['serviceAccount'] == 'pipeline@busi-project.iam.gserviceaccount.com'
  assert job['runtimeConfig']['gcsOutputDirectory'] == PIPELINE_ROOT
  assert job['runtimeConfig']['parameterValues'] == {'epochs': 4}
  assert job['pipelineSpec']['pipelineInfo']['name'] == 'busi-ultrasound'
  assert schedule_path == '/v1/projects/busi-project/locations/europe-west4/schedules'
  assert schedule['cron'] == 'TZ=UTC 0 3 * * 1'
  assert schedule['maxConcurrentRunCount'] == '1'
  scheduled_job = schedule['createPipelineJobRequest']['pipelineJob']
  assert scheduled_job['runtimeConfig']['parameterValues'] == {'epochs': 4}
  out = capsys.readouterr().out
  assert 'Started pipeline job projects/busi-project/locations/europe-west4/pipelineJobs/1' in out
  assert 'Scheduled projects/busi-project/locations/europe-west4/schedules/2' in out


@pytest.mark.parametrize('flags, message', [
    (['--schedule', '0 0 3 * * 1'], "Vertex AI's 5-field cron"),
    (['--region', ''], 'need --project and --region'),
])
def test_bad_vertex_submissions_are_one_line(flags, message, capsys):
  with pytest.raises(SystemExit):
    kubeflow_runner.parse_args(REQUIRED_FLAGS + VERTEX_FLAGS + ['--submit'] + flags)
  assert message in capsys.readouterr().err.splitlines()[-1]
