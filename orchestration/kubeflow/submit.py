"""Uploads the compiled package to Kubeflow Pipelines, then runs or schedules it.

Each upload becomes a new version of one pipeline, so the KFP UI keeps the
history, and runs and recurring runs point at the exact version they were
created from: recompiling never silently changes what a schedule retrains.
"""

import dataclasses
import datetime
import hashlib
from typing import Any, Mapping, Optional, Tuple

import kfp
from kfp import client as kfp_client

# KFP's scheduler reads cron with a leading seconds field (robfig/cron).
CRON_FIELDS = 6


@dataclasses.dataclass(frozen=True)
class Submission:
  """What was created on the server."""
  pipeline_id: str
  version_id: str
  run_id: Optional[str] = None
  recurring_run_id: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Connection:
  """How to reach and authenticate to the KFP API.

  Multi-user Kubeflow rejects requests without a user namespace and a token:
  `token_file` holds a bearer token (e.g. `kubectl create token` output, or
  the projected service-account token inside a pod), read again on every
  request so a refreshed token is picked up.
  """
  host: str
  namespace: Optional[str] = None
  token_file: Optional[str] = None


def client_for(connection: Connection) -> kfp.Client:
  credentials = (kfp_client.ServiceAccountTokenVolumeCredentials(connection.token_file)
                 if connection.token_file else None)
  if connection.namespace:
    return kfp.Client(host=connection.host, namespace=connection.namespace,
                      credentials=credentials)
  return kfp.Client(host=connection.host, credentials=credentials)


def check_cron(expression: str) -> str:
  """Returns the expression, or raises ValueError saying what KFP expects."""
  if expression.startswith('@') or len(expression.split()) == CRON_FIELDS:
    return expression
  raise ValueError(
      f"--schedule takes KFP's {CRON_FIELDS}-field cron, seconds first "
      f"(e.g. '0 0 3 * * 1' for Mondays 03:00), got {expression!r}")


def version_name(package_path: str, pipeline_name: str,
                 now: datetime.datetime) -> str:
  with open(package_path, 'rb') as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  return f'{pipeline_name}-{now:%Y%m%d-%H%M%S}-{digest[:8]}'


def upload(client: kfp.Client, package_path: str, pipeline_name: str,
           now: datetime.datetime) -> Tuple[str, str]:
  """Uploads the package as a new version; returns (pipeline id, version id)."""
  pipeline_id = client.get_pipeline_id(pipeline_name)
  if pipeline_id is None:
    pipeline_id = client.upload_pipeline(package_path, pipeline_name).pipeline_id
    # Uploading a new pipeline also creates its first version.
    versions = client.list_pipeline_versions(
        pipeline_id, page_size=1, sort_by='created_at desc').pipeline_versions
    return pipeline_id, versions[0].pipeline_version_id
  version = client.upload_pipeline_version(
      package_path, version_name(package_path, pipeline_name, now),
      pipeline_id=pipeline_id)
  return pipeline_id, version.pipeline_version_id


def submit(connection: Connection, package_path: str, pipeline_name: str,
           experiment: str, run_now: bool, cron: Optional[str],
           experiment_id: Optional[str] = None,
           now: Optional[datetime.datetime] = None,
           parameters: Optional[Mapping[str, Any]] = None) -> Submission:
  """Uploads, then starts a run (run_now) and/or a recurring run (cron).

  The run goes into `experiment_id` when given (an experiment that exists,
  e.g. one a Kubeflow admin created in the user's namespace), otherwise into
  the experiment named `experiment`, created in the namespace if missing.
  The recurring run allows one run at a time and, when the schedule was paused
  or the backend was down, starts one run rather than one per missed slot.
  `parameters` set pipeline parameters of both; the others keep their
  compiled defaults.
  """
  now = now or datetime.datetime.now(datetime.timezone.utc)
  client = client_for(connection)
  pipeline_id, version_id = upload(client, package_path, pipeline_name, now)
  if not experiment_id:
    experiment_id = client.create_experiment(
        experiment, namespace=connection.namespace).experiment_id
  run_id = recurring_run_id = None
  if run_now:
    run_id = client.run_pipeline(
        experiment_id, f'{pipeline_name} {now:%Y-%m-%d %H:%M:%S}',
        params=dict(parameters or {}), pipeline_id=pipeline_id,
        version_id=version_id).run_id
  if cron:
    recurring_run_id = client.create_recurring_run(
        experiment_id, f'{pipeline_name} retraining', cron_expression=cron,
        max_concurrency=1, no_catchup=True, params=dict(parameters or {}),
        pipeline_id=pipeline_id, version_id=version_id).recurring_run_id
  return Submission(pipeline_id, version_id, run_id, recurring_run_id)
