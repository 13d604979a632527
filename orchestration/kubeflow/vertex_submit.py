"""Runs or schedules the compiled Vertex AI package through google-cloud-aiplatform.

The SDK reads the package itself (`aiplatform.PipelineJob(template_path=...)`,
which needs one YAML document, see compiler.py), builds the run's runtime
config from it (pipeline root, run parameters) and creates the pipeline job,
or a schedule that creates one per cron tick. Vertex AI has no pipeline
versions to upload: each job and each schedule carries its own copy of the
spec, so a schedule keeps retraining what it was created with.
"""

import dataclasses
from typing import Any, Mapping, Optional

from google.auth import credentials as auth_credentials

# Vertex AI's schedules read standard 5-field cron, optionally after TZ=ZONE.
CRON_FIELDS = 5


@dataclasses.dataclass(frozen=True)
class VertexConnection:
  """Where the jobs run, and as whom.

  `api_endpoint` reaches another endpoint than the region's (a private one);
  with an `http://` address the SDK talks REST to it.
  """
  project: str
  region: str
  service_account: Optional[str] = None
  api_endpoint: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class VertexSubmission:
  """The resource names of what was created."""
  job: Optional[str] = None
  schedule: Optional[str] = None


def check_cron(expression: str) -> str:
  """Returns the expression, or raises ValueError saying what Vertex AI expects."""
  fields = expression.split()
  if fields and fields[0].startswith('TZ='):
    fields = fields[1:]
  if len(fields) == CRON_FIELDS:
    return expression
  raise ValueError(
      f"--schedule takes Vertex AI's {CRON_FIELDS}-field cron, optionally after TZ=ZONE "
      f"(e.g. 'TZ=Europe/Paris 0 3 * * 1' for Mondays 03:00), got {expression!r}")


def submit(connection: VertexConnection, package_path: str, display_name: str,
           pipeline_root: str, run_now: bool, cron: Optional[str] = None,
           parameters: Optional[Mapping[str, Any]] = None,
           credentials: Optional[auth_credentials.Credentials] = None) -> VertexSubmission:
  """Creates a pipeline job (`run_now`) and/or a schedule (`cron`) of the package.

  A schedule allows one run at a time. `credentials` default to the
  environment's (Application Default Credentials).
  """
  from google.cloud import aiplatform  # pylint: disable=g-import-not-at-top
  aiplatform.init(project=connection.project, location=connection.region,
                  credentials=credentials, api_endpoint=connection.api_endpoint,
                  api_transport=('rest' if connection.api_endpoint
                                 and connection.api_endpoint.startswith('http://') else None))

  def job() -> 'aiplatform.PipelineJob':
    return aiplatform.PipelineJob(display_name=display_name, template_path=package_path,
                                  pipeline_root=pipeline_root,
                                  parameter_values=dict(parameters or {}))

  job_name = schedule_name = None
  if run_now:
    run = job()
    run.submit(service_account=connection.service_account)
    job_name = run.resource_name
  if cron:
    schedule = aiplatform.PipelineJobSchedule(pipeline_job=job(),
                                              display_name=f'{display_name}-schedule')
    schedule.create(cron=cron, max_concurrent_run_count=1,
                    service_account=connection.service_account)
    schedule_name = schedule.resource_name
  return VertexSubmission(job_name, schedule_name)
