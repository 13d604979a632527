"""Compiles the pipeline for Kubeflow Pipelines v2 and optionally submits or schedules it.

    python kubeflow_runner.py --image REGISTRY/busi-tfx:TAG \\
        --pipeline-root gs://BUCKET/tfx --data-root gs://BUCKET/Dataset_BUSI_with_GT \\
        --serving-dir gs://BUCKET/serving [--model busi_net] [--submit] \\
        [--schedule '0 0 3 * * 1'] [--host http://KFP_ENDPOINT] \\
        [--gpus 1 --gpu-type Tesla-T4] [--param epochs=5] [--kfp-version 2.14.0]
    python kubeflow_runner.py --target vertex --project P --region R ... [--submit]

It takes every pipeline flag local_runner.py takes (orchestration/config_flags.py).
Writes outputs/kubeflow/pipeline.yaml (KFP v2 pipeline spec + Kubernetes
platform spec; the pipeline spec alone for Vertex AI). The image must be built
from this same checkout: the compiled spec fingerprints the model code it was
compiled with. See docs/kubeflow.md.
"""

import argparse
import dataclasses
import os
import re
import sys
from typing import Any, Dict, List, Tuple

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from google.api_core import exceptions as google_exceptions
from google.auth import exceptions as google_auth_exceptions
from kfp_server_api import ApiException
import urllib3

from contracts import configs
from orchestration import beam_runners
from orchestration import config_flags
from orchestration.kubeflow import backends as kfp_backends
from orchestration.kubeflow import compiler as kubeflow_compiler
from orchestration.kubeflow import configs as kubeflow_configs
from orchestration.kubeflow import platform as kubeflow_platform
from orchestration.kubeflow import submit as kubeflow_submit
from orchestration.kubeflow import vertex_machines
from orchestration.kubeflow import vertex_submit
from pipeline import pipeline as pipeline_lib
from pipeline import run_parameters

# Schemes TensorFlow's file system reads and writes from inside the pods
# (s3:// needs tensorflow-io in the image).
STORAGE_SCHEMES = ('gs://', 's3://', 'hdfs://')


def _storage_uri(flag: str):
  def parse(text: str) -> str:
    if not text.startswith(STORAGE_SCHEMES):
      raise argparse.ArgumentTypeError(
          f'{flag} must be object storage every pod can reach '
          f'({", ".join(STORAGE_SCHEMES)}), got {text!r}')
    return text.rstrip('/')
  return parse


def _positive(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    value = -1
  if value <= 0:
    raise argparse.ArgumentTypeError(f'expected a positive number, got {text!r}')
  return value


def _label(text: str) -> Tuple[str, str]:
  key, sep, value = text.partition('=')
  if not sep or not key:
    raise argparse.ArgumentTypeError(f'--gpu-node-selector takes KEY=VALUE, got {text!r}')
  return key, value


def _component_resources(text: str) -> Tuple[str, kubeflow_configs.Resources]:
  component, _, sizes = text.partition('=')
  try:
    cpu, memory_gb = (float(size) for size in sizes.split(','))
  except ValueError:
    cpu = memory_gb = -1
  if not component or min(cpu, memory_gb) <= 0:
    raise argparse.ArgumentTypeError(
        f'--resources takes COMPONENT=CPU,MEMORY_GB (e.g. Transform=4,16), got {text!r}')
  return component, kubeflow_configs.Resources(cpu, memory_gb)


def _toleration(text: str) -> kubeflow_configs.Toleration:
  key_value, _, effect = text.partition(':')
  key, _, value = key_value.partition('=')
  effect = effect or 'NoSchedule'
  if not key or effect not in kubeflow_configs.TOLERATION_EFFECTS:
    raise argparse.ArgumentTypeError(
        f'--gpu-toleration takes KEY[=VALUE][:EFFECT] with EFFECT one of '
        f'{", ".join(kubeflow_configs.TOLERATION_EFFECTS)}, got {text!r}')
  return kubeflow_configs.Toleration(key=key, value=value, effect=effect)


def _run_parameter(text: str) -> Tuple[str, Any]:
  name, sep, value = text.partition('=')
  if not sep:
    raise argparse.ArgumentTypeError(f'--param takes NAME=VALUE, got {text!r}')
  try:
    return name, run_parameters.parse_value(name, value)
  except ValueError as e:
    raise argparse.ArgumentTypeError(str(e))


def _webhook(text: str) -> str:
  if not text.startswith(('https://', 'http://')):
    raise argparse.ArgumentTypeError(f'--alert-webhook takes an http(s) URL, got {text!r}')
  return text


def _kfp_version(text: str) -> str:
  try:
    kfp_backends.parse_version(text)
  except kfp_backends.BackendVersionError as e:
    raise argparse.ArgumentTypeError(str(e))
  return text


def _accelerator_type(text: str) -> str:
  """A GPU accelerator type the installed Vertex AI SDK knows (its AcceleratorType enum)."""
  from google.cloud.aiplatform_v1.types import accelerator_type  # pylint: disable=g-import-not-at-top
  gpus = [name for name in accelerator_type.AcceleratorType.__members__
          if name.startswith('NVIDIA_')]
  if text not in gpus:
    raise argparse.ArgumentTypeError(
        f'--accelerator-type takes a Vertex AI GPU type ({", ".join(gpus)}), got {text!r}')
  return text


def _secret_name(text: str) -> str:
  if not re.fullmatch(r'[a-z0-9]([-a-z0-9]*[a-z0-9])?', text) or len(text) > 63:
    raise argparse.ArgumentTypeError(
        f'--credentials-secret takes a Kubernetes secret name (lower-case letters, '
        f'digits and -), got {text!r}')
  return text


def make_parser() -> argparse.ArgumentParser:
  """The pipeline flags both runners share, and where and how KFP runs them."""
  platform_defaults = kubeflow_configs.KubeflowConfig(image='')
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  paths = parser.add_argument_group('where things are')
  paths.add_argument('--image', required=True,
                     help='container image built from this checkout (see Dockerfile)')
  paths.add_argument('--pipeline-root', required=True, type=_storage_uri('--pipeline-root'),
                     help='object storage for pipeline artifacts, e.g. gs://BUCKET/tfx')
  paths.add_argument('--serving-dir', required=True, type=_storage_uri('--serving-dir'),
                     help='TF Serving model root; blessed models are pushed below it')
  paths.add_argument('--output', default='outputs/kubeflow/pipeline.yaml',
                     help='where the compiled package is written')

  config_flags.add_pipeline_flags(parser)

  pods = parser.add_argument_group('pods')
  pods.add_argument('--cpu', type=_positive,
                    default=platform_defaults.component_resources.cpu,
                    help='CPU cores for each component but the Trainer')
  pods.add_argument('--memory-gb', type=_positive,
                    default=platform_defaults.component_resources.memory_gb)
  pods.add_argument('--trainer-cpu', type=_positive,
                    help=f'default {platform_defaults.trainer_resources.cpu:g}, '
                         'or the shape of --machine-type')
  pods.add_argument('--trainer-memory-gb', type=_positive,
                    help=f'default {platform_defaults.trainer_resources.memory_gb:g}, '
                         'or the shape of --machine-type')
  pods.add_argument('--resources', type=_component_resources, action='append', default=[],
                    metavar='COMPONENT=CPU,MEMORY_GB',
                    help='other sizes for one component (repeatable), e.g. Transform=4,16')
  pods.add_argument('--gpus', type=int, default=platform_defaults.gpu.count,
                    help='GPUs for the Trainer (0: train on CPU)')
  pods.add_argument('--gpu-resource', default=platform_defaults.gpu.resource,
                    help='extended resource the GPU device plugin advertises')
  pods.add_argument('--gpu-type',
                    help=f'GPU model: adds the node selector '
                         f'{kubeflow_configs.GPU_PRODUCT_LABEL}=GPU_TYPE, e.g. Tesla-T4')
  pods.add_argument('--gpu-node-selector', type=_label, action='append', default=[],
                    metavar='KEY=VALUE', help='node label the Trainer requires '
                    '(repeatable), e.g. cloud.google.com/gke-accelerator=nvidia-tesla-t4')
  pods.add_argument('--gpu-toleration', type=_toleration, action='append',
                    metavar='KEY[=VALUE][:EFFECT]',
                    help='taint of the GPU nodes the Trainer tolerates (repeatable; '
                         f'default {kubeflow_configs.NVIDIA_GPU_RESOURCE}:NoSchedule)')

  pods.add_argument('--credentials-secret', metavar='NAME', type=_secret_name,
                    help='a Kubernetes secret holding a service-account key as '
                         f'{kubeflow_configs.CREDENTIALS_KEY_FILE}, mounted in every task '
                         f'and named by {kubeflow_configs.CREDENTIALS_ENV} (clusters '
                         'outside GKE; on GKE use Workload Identity instead)')

  vertex = parser.add_argument_group('target')
  vertex.add_argument('--target', choices=kubeflow_configs.TARGETS,
                      default=kubeflow_configs.KFP_TARGET,
                      help='kfp: a self-hosted Kubeflow Pipelines backend (default); '
                           'vertex: Vertex AI Pipelines (one YAML document, GPUs as '
                           'accelerator types, no Kubernetes settings)')
  vertex.add_argument('--accelerator-type', type=_accelerator_type,
                      default=kubeflow_configs.DEFAULT_VERTEX_ACCELERATOR,
                      help='for --target vertex: the Trainer\'s GPU, a Vertex AI '
                           'accelerator type, e.g. NVIDIA_TESLA_T4 (default), NVIDIA_L4')
  vertex.add_argument('--machine-type',
                      help='for --target vertex: the Trainer\'s machine type, e.g. '
                           'g2-standard-8 (asked for as its vCPUs and memory, from which '
                           'Vertex AI picks the machine; see docs/kubeflow.md)')
  vertex.add_argument('--project', help='for --target vertex: the Google Cloud project')
  vertex.add_argument('--region', help='for --target vertex: the region, e.g. europe-west4')
  vertex.add_argument('--service-account', metavar='EMAIL',
                      help='for --target vertex: the service account the jobs run as '
                           '(default: the project\'s Compute Engine default)')
  vertex.add_argument('--vertex-api-endpoint', metavar='HOST',
                      help='for --target vertex: another API endpoint than the region\'s')

  kfp = parser.add_argument_group('Kubeflow Pipelines')
  kfp.add_argument('--host', help='KFP API endpoint, e.g. http://localhost:8080')
  kfp.add_argument('--submit', action='store_true', help='upload and start a run now')
  kfp.add_argument('--schedule', metavar='CRON',
                   help="upload and retrain on a cron: KFP's 6 fields, seconds first "
                        "(e.g. '0 0 3 * * 1'); Vertex AI's 5, optionally after TZ=ZONE "
                        "(e.g. 'TZ=UTC 0 3 * * 1')")
  kfp.add_argument('--param', type=_run_parameter, action='append', default=[],
                   metavar='NAME=VALUE',
                   help='a run parameter for the run and the recurring run (repeatable; '
                        f'{", ".join(run_parameters.NAMES)}), e.g. --param epochs=5; '
                        'unset ones take the compiled value')
  kfp.add_argument('--kfp-version', type=_kfp_version, default=kfp_backends.DEFAULT_VERSION,
                   metavar='X.Y.Z',
                   help='the KFP backend the package runs on (oldest supported '
                        f'{kfp_backends.OLDEST_SUPPORTED}); what it cannot run is refused')
  kfp.add_argument('--alert-webhook', type=_webhook, metavar='URL',
                   help='POST a JSON alert here when a run does not succeed (an exit '
                        f'handler task; needs KFP {kfp_backends.EXIT_HANDLER.minimum} '
                        'or later), e.g. a Slack incoming webhook')
  kfp.add_argument('--experiment', default=kubeflow_configs.PIPELINE_NAME,
                   help='experiment name; created if missing')
  kfp.add_argument('--experiment-id',
                   help='an existing experiment to run in, instead of --experiment')
  kfp.add_argument('--namespace',
                   help='the Kubeflow user namespace (multi-user deployments)')
  kfp.add_argument('--token-file',
                   help='file holding a bearer token for the KFP API, re-read on '
                        'each request (multi-user deployments), e.g. the output '
                        'of kubectl create token')
  return parser


def parse_args(argv: List[str]) -> argparse.Namespace:
  parser = make_parser()
  args = parser.parse_args(argv)
  if not args.data_root:
    parser.error('--data-root is required: the BUSI folder in object storage')
  config_flags.check_pipeline_flags(parser, args)
  try:
    args.sites = tuple(dataclasses.replace(site, root=_storage_uri('--data-root')(site.root))
                       for site in args.sites)
  except argparse.ArgumentTypeError as e:
    parser.error(str(e))
  if args.target == kubeflow_configs.VERTEX_TARGET:
    kubernetes_only = [flag for flag, given in (
        ('--gpu-type', args.gpu_type), ('--gpu-node-selector', args.gpu_node_selector),
        ('--gpu-toleration', args.gpu_toleration),
        ('--credentials-secret', args.credentials_secret), ('--host', args.host)) if given]
    if kubernetes_only:
      parser.error(f'{", ".join(kubernetes_only)}: not for --target vertex (Vertex AI '
                   'places the Trainer by --accelerator-type, runs as --service-account, '
                   'and is reached through --project and --region, see docs/kubeflow.md)')
  _trainer_shape(parser, args)
  if args.job_endpoint == beam_runners.EMBEDDED_JOB_SERVICE:
    parser.error(f'--job-endpoint {beam_runners.EMBEDDED_JOB_SERVICE} runs Beam inside '
                 'the local runner; give the job server\'s HOST:PORT')
  if args.schedule:
    try:
      (vertex_submit if args.target == kubeflow_configs.VERTEX_TARGET
       else kubeflow_submit).check_cron(args.schedule)
    except ValueError as e:
      parser.error(str(e))
  if args.target == kubeflow_configs.VERTEX_TARGET:
    if (args.submit or args.schedule) and not (args.project and args.region):
      parser.error('--submit and --schedule with --target vertex need --project and --region')
  elif (args.submit or args.schedule) and not args.host:
    parser.error('--submit and --schedule need --host (the KFP API endpoint)')
  if args.param and not (args.submit or args.schedule):
    parser.error('--param sets a value for --submit and --schedule; compiled '
                 'defaults come from the other flags (e.g. --epochs)')
  if args.token_file and not os.path.isfile(args.token_file):
    parser.error(f'--token-file {args.token_file!r} is not a file')
  if args.gpus < 0:
    parser.error(f'--gpus must be 0 or more, got {args.gpus}')
  return args


def _trainer_shape(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
  """Fills in the Trainer's CPU and memory: the flags, the machine type's shape, or the defaults."""
  defaults = kubeflow_configs.KubeflowConfig(image='').trainer_resources
  if args.machine_type:
    if args.target != kubeflow_configs.VERTEX_TARGET:
      parser.error('--machine-type is for --target vertex; on Kubernetes give '
                   '--trainer-cpu, --trainer-memory-gb and --gpu-type')
    if args.trainer_cpu is not None or args.trainer_memory_gb is not None:
      parser.error(f'--machine-type {args.machine_type} sets the Trainer\'s CPU and memory: '
                   'leave out --trainer-cpu and --trainer-memory-gb')
    try:
      machine = vertex_machines.trainer_machine(args.machine_type, args.accelerator_type,
                                                args.gpus)
    except vertex_machines.MachineTypeError as e:
      parser.error(str(e))
    args.trainer_cpu, args.trainer_memory_gb = machine.cpu, machine.memory_gb
  if args.trainer_cpu is None:
    args.trainer_cpu = defaults.cpu
  if args.trainer_memory_gb is None:
    args.trainer_memory_gb = defaults.memory_gb


def build_configs(args: argparse.Namespace
                  ) -> Tuple[configs.PipelineConfig, kubeflow_configs.KubeflowConfig]:
  if args.target == kubeflow_configs.VERTEX_TARGET:
    gpu = kubeflow_configs.GpuPool(count=args.gpus, resource=args.accelerator_type,
                                   tolerations=())
  else:
    gpu = kubeflow_configs.GpuPool(
        count=args.gpus, resource=args.gpu_resource,
        node_selector=tuple(args.gpu_node_selector) + (
            ((kubeflow_configs.GPU_PRODUCT_LABEL, args.gpu_type),) if args.gpu_type else ()),
        tolerations=tuple(args.gpu_toleration or kubeflow_configs.GpuPool.tolerations))
  platform = kubeflow_configs.KubeflowConfig(
      image=args.image,
      component_resources=kubeflow_configs.Resources(args.cpu, args.memory_gb),
      trainer_resources=kubeflow_configs.Resources(args.trainer_cpu,
                                                   args.trainer_memory_gb),
      gpu=gpu,
      resources_by_component=tuple(args.resources),
      alert_webhook=args.alert_webhook or '',
      credentials_secret=args.credentials_secret or '',
      target=args.target,
      kfp_version=args.kfp_version)
  pipeline_config = configs.PipelineConfig(
      pipeline_name=kubeflow_configs.PIPELINE_NAME,
      pipeline_root=args.pipeline_root,
      serving_dir=args.serving_dir,
      schema_file=kubeflow_configs.IMAGE_SCHEMA_FILE,
      data=config_flags.data_config(args, args.sites),
      model=config_flags.model_config(args),
      training=config_flags.training_config(args),
      evaluation=config_flags.evaluation_config(args),
      keep_served_versions=args.keep_versions,
      enable_cache=not args.no_cache,
      beam_pipeline_args=_beam_pipeline_args(args))
  return pipeline_config, platform


def _beam_pipeline_args(args: argparse.Namespace) -> Tuple[str, ...]:
  """The Beam arguments of the flags for every pod."""
  extra = [f'--job_endpoint={args.job_endpoint}'] * bool(args.job_endpoint)
  return beam_runners.beam_pipeline_args(config_flags.BEAM_RUNNERS[args.beam_runner],
                                         extra + args.beam_arg, args.image,
                                         direct_num_workers=args.beam_workers)


def kubeflow_pipeline(pipeline_config: configs.PipelineConfig):
  """The DAG as compiled: run parameters, and the data fingerprint task KFP's cache keys on."""
  return pipeline_lib.create_pipeline(pipeline_config, run_parameters.runtime(pipeline_config),
                                      fingerprint_task=True)


def main(argv: List[str]) -> int:
  args = parse_args(argv)
  try:
    built, message = config_flags.config_or_message(
        'kubeflow_runner.py', lambda: build_configs(args))
  except beam_runners.BeamArgsError as e:
    message = f'kubeflow_runner.py: {e}'
  if message:
    print(message, file=sys.stderr)
    return 2
  pipeline_config, platform = built
  parameter_values: Dict[str, Any] = dict(args.param)
  try:
    run_parameters.with_values(pipeline_config, parameter_values)
  except configs.ConfigError as e:
    print(f'kubeflow_runner.py: error: --param {e.field.rsplit(".", 1)[-1]} {e.message}',
          file=sys.stderr)
    return 2
  try:
    # The configured values are the compiled defaults; a run may set others.
    kubeflow_compiler.compile_package(
        kubeflow_pipeline(pipeline_config), platform, args.output)
  except (kubeflow_platform.PlatformConfigError, kfp_backends.BackendVersionError) as e:
    print(f'kubeflow_runner.py: {e}', file=sys.stderr)
    return 2
  print(f'Wrote {args.output}')
  if not (args.submit or args.schedule):
    return 0
  if args.target == kubeflow_configs.VERTEX_TARGET:
    return _submit_to_vertex(args, pipeline_config, parameter_values)
  try:
    submission = kubeflow_submit.submit(
        kubeflow_submit.Connection(args.host, args.namespace, args.token_file),
        args.output, pipeline_config.pipeline_name, args.experiment,
        run_now=args.submit, cron=args.schedule, experiment_id=args.experiment_id,
        parameters=parameter_values)
  except ApiException as e:
    body = ' '.join(str(e.body or '').split())
    print(f'kubeflow_runner.py: Kubeflow Pipelines at {args.host} answered '
          f'{e.status} {e.reason}: {body}', file=sys.stderr)
    return 1
  except urllib3.exceptions.HTTPError as e:
    print(f'kubeflow_runner.py: Kubeflow Pipelines at {args.host} is unreachable: '
          f'{getattr(e, "reason", None) or e}', file=sys.stderr)
    return 1
  print(f'Uploaded pipeline {submission.pipeline_id} version {submission.version_id}')
  if submission.run_id:
    print(f'Started run {submission.run_id}')
  if submission.recurring_run_id:
    print(f'Scheduled recurring run {submission.recurring_run_id} ({args.schedule})')
  return 0


def _submit_to_vertex(args: argparse.Namespace, pipeline_config: configs.PipelineConfig,
                      parameter_values: Dict[str, Any]) -> int:
  try:
    submission = vertex_submit.submit(
        vertex_submit.VertexConnection(args.project, args.region, args.service_account,
                                       args.vertex_api_endpoint),
        args.output, pipeline_config.pipeline_name, pipeline_config.pipeline_root,
        run_now=args.submit, cron=args.schedule, parameters=parameter_values)
  except (google_exceptions.GoogleAPIError, google_auth_exceptions.GoogleAuthError) as e:
    print(f'kubeflow_runner.py: Vertex AI in {args.project}/{args.region} refused: '
          f'{" ".join(str(e).split())}', file=sys.stderr)
    return 1
  if submission.job:
    print(f'Started pipeline job {submission.job}')
  if submission.schedule:
    print(f'Scheduled {submission.schedule} ({args.schedule})')
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
