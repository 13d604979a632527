"""The exit handler's alert: posted for a run that did not succeed, never for one that did."""

import json
import socket

import pytest

from components import failure_alert
from tests.fake_webhook import FakeWebhook


def final_status(state, error=''):
  """PipelineTaskFinalStatus as the open-source driver resolves it, as JSON."""
  return json.dumps({'state': state, 'pipelineJobResourceName': 'run-42',
                     'pipelineTaskName': 'tfx-dag',
                     'error': {'code': 2, 'message': error} if error else {}})


def test_a_failed_run_posts_the_pipeline_run_task_and_error():
  with FakeWebhook() as webhook:
    posted = failure_alert.report(final_status('FAILED', 'task Trainer failed'),
                                  'busi-ultrasound', webhook.url)
  assert posted
  [post] = webhook.posts
  assert post['path'] == '/hooks/alert'
  assert post['content_type'] == 'application/json'
  assert post['json'] == {
      'text': 'Pipeline busi-ultrasound run run-42 ended FAILED in tfx-dag: '
              'task Trainer failed',
      'pipeline': 'busi-ultrasound', 'run': 'run-42', 'state': 'FAILED',
      'task': 'tfx-dag', 'error': 'task Trainer failed'}


# Vertex AI's failure states, and the open-source driver's (ML Metadata execution states).
@pytest.mark.parametrize('state', ['CANCELLED', 'FAILED', 'CANCELED', 'RUNNING', ''])
def test_any_end_but_success_is_reported(state):
  with FakeWebhook() as webhook:
    assert failure_alert.report(final_status(state), 'p', webhook.url)
  assert webhook.posts[0]['json']['state'] == (state or 'UNKNOWN')


# SUCCEEDED: Vertex AI; COMPLETE and CACHED: the open-source driver.
@pytest.mark.parametrize('state', ['SUCCEEDED', 'COMPLETE', 'CACHED'])
def test_a_successful_run_posts_nothing(state):
  with FakeWebhook() as webhook:
    assert not failure_alert.report(final_status(state), 'p', webhook.url)
  assert webhook.posts == []


def test_without_a_webhook_a_failure_is_only_logged(caplog):
  assert not failure_alert.report(final_status('FAILED'), 'busi-ultrasound', '')
  assert 'no alert webhook configured' in caplog.text


def test_vertex_snake_case_status_is_read_too():
  status = failure_alert.parse_final_status(json.dumps({
      'state': 'FAILED', 'pipeline_job_resource_name': 'projects/p/pipelineJobs/j',
      'pipeline_task_name': 'tfx-dag', 'error': {'message': 'boom'}}))
  assert status == failure_alert.FinalStatus('FAILED', 'projects/p/pipelineJobs/j',
                                             'tfx-dag', 'boom')
  assert not status.succeeded


def test_a_webhook_that_refuses_or_is_down_fails_the_task_with_one_line():
  with FakeWebhook(status=403) as webhook:
    with pytest.raises(failure_alert.AlertError, match='answered 403'):
      failure_alert.report(final_status('FAILED'), 'p', webhook.url)
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    closed_port = probe.getsockname()[1]
  with pytest.raises(failure_alert.AlertError, match='unreachable'):
    failure_alert.report(final_status('FAILED'), 'p', f'http://127.0.0.1:{closed_port}/')
