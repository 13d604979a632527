"""An exit handler that reports a failed pipeline run to a webhook.

A scheduled retraining that fails should not wait for someone to open the KFP
UI. On Kubeflow Pipelines this step runs after every other task, whether they
succeeded or not (TFX's exit handler), and receives the final status of the
run's DAG: on anything but success it posts one JSON message to the
configured webhook URL, naming the pipeline, the run, the task the status
names and the error. Without a URL it only logs.

The message carries a `text` field, so Slack and Mattermost incoming webhooks
and Microsoft Teams' workflow webhooks show it as it is; the other fields are
for programs. The final status is `PipelineTaskFinalStatus` as JSON (Vertex AI
sends it so; orchestration/kubeflow/entrypoint.py serialises the struct the
open-source driver sends).

The two backends name the states differently. Vertex AI sends SUCCEEDED,
FAILED or CANCELLED (kfp's dsl/task_final_status.py). The open-source driver
(2.14 to 2.17, backend/src/v2/driver/resolve.go) sends the ML Metadata state
of the sub-DAG's execution: COMPLETE when all its tasks completed or were
cached, FAILED when one failed (metadata/client.go, UpdateDAGExecutionsState),
and RUNNING when a task ended without recording a state (a pod killed before
its launcher could), which is a failure too. So only the success states are
listed, and every other state is alerted.
"""

import dataclasses
import json
from typing import Any, Dict
import urllib.error
import urllib.request

from absl import logging
from tfx import v1 as tfx

# PipelineTaskFinalStatus.state of a run that needs no alert: Vertex AI's, and
# the ML Metadata execution states the open-source driver sends.
SUCCEEDED_STATES = ('SUCCEEDED', 'COMPLETE', 'CACHED')
_TIMEOUT_SECONDS = 30


class AlertError(RuntimeError):
  """The webhook did not accept the alert; the message says what it answered."""


@dataclasses.dataclass(frozen=True)
class FinalStatus:
  """The part of KFP's PipelineTaskFinalStatus an alert reports."""
  state: str
  run: str
  task: str
  error_message: str

  @property
  def succeeded(self) -> bool:
    return self.state in SUCCEEDED_STATES


def parse_final_status(text: str) -> FinalStatus:
  """PipelineTaskFinalStatus JSON (camelCase or snake_case field names)."""
  status = json.loads(text or '{}')

  def field(camel: str, snake: str) -> str:
    return str(status.get(camel, status.get(snake, '')) or '')

  error = status.get('error') or {}
  return FinalStatus(
      state=str(status.get('state', '')) or 'UNKNOWN',
      run=field('pipelineJobResourceName', 'pipeline_job_resource_name')
      or field('pipelineJobName', 'pipeline_job_name'),
      task=field('pipelineTaskName', 'pipeline_task_name'),
      error_message=str(error.get('message', '')))


def alert_message(pipeline_name: str, status: FinalStatus) -> Dict[str, Any]:
  """The JSON body posted for a run that did not succeed."""
  text = f'Pipeline {pipeline_name} run {status.run or "(unnamed)"} ended {status.state}'
  if status.task:
    text += f' in {status.task}'
  if status.error_message:
    text += f': {status.error_message}'
  return {'text': text, 'pipeline': pipeline_name, 'run': status.run,
          'state': status.state, 'task': status.task, 'error': status.error_message}


def post(url: str, message: Dict[str, Any]) -> None:
  """POSTs `message` as JSON; AlertError when the webhook refuses it or is unreachable."""
  request = urllib.request.Request(
      url, data=json.dumps(message).encode('utf-8'), method='POST',
      headers={'Content-Type': 'application/json'})
  try:
    with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:
      response.read()
  except urllib.error.HTTPError as e:
    raise AlertError(f'The alert webhook answered {e.code} {e.reason}') from None
  except (urllib.error.URLError, OSError) as e:
    raise AlertError(f'The alert webhook is unreachable: {getattr(e, "reason", e)}') from None


def report(final_status: str, pipeline_name: str, webhook_url: str) -> bool:
  """Posts an alert when the run did not succeed; returns whether one was posted."""
  status = parse_final_status(final_status)
  if status.succeeded:
    logging.info('Run %s of %s succeeded: no alert.', status.run, pipeline_name)
    return False
  message = alert_message(pipeline_name, status)
  if not webhook_url:
    logging.warning('%s (no alert webhook configured, so nobody was notified)',
                    message['text'])
    return False
  post(webhook_url, message)
  logging.info('Alert posted: %s', message['text'])
  return True


@tfx.orchestration.experimental.exit_handler
def FailureAlert(  # pylint: disable=invalid-name
    final_status: tfx.dsl.components.Parameter[str],
    pipeline_name: tfx.dsl.components.Parameter[str],
    webhook_url: tfx.dsl.components.Parameter[str]) -> None:
  """`report`, as the exit handler task; give it `tfx.orchestration.experimental.FinalStatusStr()`."""
  report(final_status, pipeline_name, webhook_url)
