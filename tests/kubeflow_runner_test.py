"""kubeflow_runner.py compiles the real pipeline into a package KFP v2 accepts.

The package is read back the way the kfp client reads it: YAML documents parsed
into kfp's PipelineSpec and PlatformSpec protos (unknown fields fail).
"""

import json

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow import utils as kubeflow_utils

import kubeflow_runner
import local_runner
from models import registry
from orchestration import config_flags
from pipeline import run_parameters
from orchestration.kubeflow import compiler as kubeflow_compiler
from orchestration.kubeflow import configs as kubeflow_configs
from orchestration.kubeflow import entrypoint as kubeflow_entrypoint

IMAGE = 'registry.example/busi-tfx:abc123'
PIPELINE_ROOT = 'gs://busi-bucket/tfx'
DATA_ROOT = 'gs://busi-bucket/Dataset_BUSI_with_GT'
SERVING_DIR = 'gs://busi-bucket/serving'
REQUIRED_FLAGS = ['--image', IMAGE, '--pipeline-root', PIPELINE_ROOT,
                  '--data-root', DATA_ROOT, '--serving-dir', SERVING_DIR]

# Each task and the tasks it waits for: the DAG of pipeline/pipeline.py.
EXPECTED_EDGES = {
    'DataFingerprint': set(),
    'ImageExampleGen': {'DataFingerprint'},
    'StatisticsGen': {'ImageExampleGen', 'ImportSchemaGen'},
    'ImportSchemaGen': set(),
    'ExampleValidator': {'StatisticsGen', 'ImportSchemaGen'},
    'DataValidationGate': {'ExampleValidator', 'ImportSchemaGen'},
    'DataDriftCheck': {'ImageExampleGen', 'DataValidationGate'},
    'Transform': {'ImageExampleGen', 'DataValidationGate', 'DataDriftCheck'},
    'Trainer': {'Transform', 'DataValidationGate'},
    'ServedBaselineEvaluator': {'ImageExampleGen', 'Trainer'},
    'Pusher': {'Trainer', 'ServedBaselineEvaluator', 'ImageExampleGen'},
}


def read_package(path):
  with open(path) as f:
    documents = list(yaml.safe_load_all(f))
  pipeline_spec = json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec())
  platform_spec = pipeline_spec_pb2.PlatformSpec()
  for document in documents[1:]:
    json_format.ParseDict(document, platform_spec)
  return pipeline_spec, platform_spec


@pytest.fixture(scope='module')
def package(tmp_path_factory):
  path = tmp_path_factory.mktemp('kfp') / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + [
      '--output', str(path), '--gpus', '2', '--gpu-type', 'NVIDIA-A100-SXM4-40GB',
      '--gpu-node-selector', 'pool=gpu', '--gpu-toleration', 'dedicated=gpu:NoExecute',
      '--cpu', '3', '--memory-gb', '12', '--trainer-cpu', '6',
      '--trainer-memory-gb', '24', '--resources', 'Transform=5,20',
      '--epochs', '7', '--min-accuracy', '0.85']) == 0
  return read_package(path)


def executor_of(pipeline_spec, task):
  label = pipeline_spec.components[task].executor_label
  executors = pipeline_spec_pb2.PipelineDeploymentConfig()
  json_format.ParseDict(json_format.MessageToDict(pipeline_spec.deployment_spec), executors)
  return label, executors.executors[label]


def parameter(pipeline_spec, task, name):
  value = pipeline_spec.root.dag.tasks[task].inputs.parameters[name].runtime_value
  return value.constant.string_value


def test_every_component_is_a_task_with_its_upstream_edges(package):
  pipeline_spec, _ = package
  tasks = pipeline_spec.root.dag.tasks
  assert set(tasks) == set(EXPECTED_EDGES)
  for name, upstream in EXPECTED_EDGES.items():
    assert set(tasks[name].dependent_tasks) == upstream, name


def test_only_the_trainer_gets_gpus_and_every_pod_its_resources(package):
  pipeline_spec, _ = package
  for task in EXPECTED_EDGES:
    _, executor = executor_of(pipeline_spec, task)
    resources = executor.container.resources
    if task == kubeflow_configs.TRAINER_ID:
      assert resources.accelerator.type == 'nvidia.com/gpu'
      assert resources.accelerator.count == 2
      assert (resources.cpu_limit, resources.memory_limit) == (6, 24)
    elif task == 'Transform':
      assert not resources.HasField('accelerator')
      assert (resources.cpu_limit, resources.memory_limit) == (5, 20)
    else:
      assert not resources.HasField('accelerator'), task
      assert (resources.cpu_request, resources.cpu_limit) == (3, 3), task
      assert (resources.memory_request, resources.memory_limit) == (12, 12), task


def test_only_the_trainer_is_pinned_to_the_gpu_pool(package):
  pipeline_spec, platform_spec = package
  trainer_executor, _ = executor_of(pipeline_spec, kubeflow_configs.TRAINER_ID)
  executors = json_format.MessageToDict(
      platform_spec.platforms['kubernetes'].deployment_spec)['executors']
  assert list(executors) == [trainer_executor]
  assert executors[trainer_executor] == {
      'nodeSelector': {'labels': {'pool': 'gpu',
                                  'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-40GB'}},
      'tolerations': [{'key': 'dedicated', 'operator': 'Equal', 'value': 'gpu',
                       'effect': 'NoExecute'}],
  }


def test_every_executor_is_a_container_of_the_configured_image(package):
  pipeline_spec, _ = package
  for task in EXPECTED_EDGES:
    _, executor = executor_of(pipeline_spec, task)
    # Not a resolver (rejected by open-source KFP) nor an importer.
    assert executor.WhichOneof('spec') == 'container', task
    assert executor.container.image == IMAGE, task


def test_every_task_runs_the_project_entrypoint_and_the_trainer_requires_its_gpus(package):
  pipeline_spec, _ = package
  for task in EXPECTED_EDGES:
    _, executor = executor_of(pipeline_spec, task)
    assert tuple(executor.container.command) == kubeflow_compiler.ENTRYPOINT_COMMAND, task
    requires_gpus = kubeflow_entrypoint.REQUIRE_GPUS_FLAG in executor.container.args
    assert requires_gpus == (task == kubeflow_configs.TRAINER_ID), task
  _, trainer = executor_of(pipeline_spec, kubeflow_configs.TRAINER_ID)
  assert list(trainer.container.args[:2]) == [kubeflow_entrypoint.REQUIRE_GPUS_FLAG, '2']


def test_pipeline_root_and_parameters_are_the_configured_ones(package):
  pipeline_spec, _ = package
  assert pipeline_spec.pipeline_info.name == kubeflow_configs.PIPELINE_NAME
  assert pipeline_spec.default_pipeline_root == PIPELINE_ROOT
  assert parameter(pipeline_spec, 'ImportSchemaGen', 'schema_file') == (
      kubeflow_configs.IMAGE_SCHEMA_FILE)
  assert parameter(pipeline_spec, 'ServedBaselineEvaluator', 'serving_model_dir') == (
      f'{SERVING_DIR}/busi_classifier')
  assert f'{SERVING_DIR}/busi_classifier' in parameter(
      pipeline_spec, 'Pusher', 'push_destination')


# Each run parameter: the task and input it feeds, its KFP type, the compiled default.
RUN_PARAMETERS = {
    'data_root': ('ImageExampleGen', 'input_base', 'STRING', DATA_ROOT),
    'epochs': ('Trainer', 'epochs', 'NUMBER_INTEGER', 7),
    'warm_start': ('Trainer', 'warm_start', 'NUMBER_INTEGER', 0),
    'min_accuracy': ('ServedBaselineEvaluator', 'min_accuracy', 'NUMBER_DOUBLE', 0.85),
    'min_malignant_recall': ('ServedBaselineEvaluator', 'min_malignant_recall',
                             'NUMBER_DOUBLE', 0.75),
    'regression_tolerance': ('ServedBaselineEvaluator', 'regression_tolerance',
                             'NUMBER_DOUBLE', 0.0),
}


def test_run_parameters_are_pipeline_inputs_with_the_configured_defaults(package):
  pipeline_spec, _ = package
  declared = pipeline_spec.root.input_definitions.parameters
  assert set(declared) == set(run_parameters.NAMES) == set(RUN_PARAMETERS)
  for name, (task, task_input, kind, default) in RUN_PARAMETERS.items():
    spec = declared[name]
    assert pipeline_spec_pb2.ParameterType.ParameterTypeEnum.Name(
        spec.parameter_type) == kind, name
    assert json_format.MessageToDict(spec.default_value) == default, name
    assert spec.is_optional, name
    task_parameter = pipeline_spec.root.dag.tasks[task].inputs.parameters[task_input]
    assert task_parameter.component_input_parameter == name, name


def test_only_the_data_fingerprint_is_never_served_from_cache(package):
  """ImageExampleGen is cached on the data's fingerprint, not its path (kubeflow_noop_test.py)."""
  pipeline_spec, _ = package
  cached = {name for name, task in pipeline_spec.root.dag.tasks.items()
            if task.caching_options.enable_cache}
  assert cached == set(EXPECTED_EDGES) - {'DataFingerprint'}


def test_cpu_only_training_has_no_gpu_request_or_pinning(tmp_path):
  path = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + ['--output', str(path), '--gpus', '0']) == 0
  pipeline_spec, platform_spec = read_package(path)
  _, trainer = executor_of(pipeline_spec, kubeflow_configs.TRAINER_ID)
  assert not trainer.container.resources.HasField('accelerator')
  assert kubeflow_entrypoint.REQUIRE_GPUS_FLAG not in trainer.container.args
  assert not platform_spec.platforms


@pytest.mark.parametrize('flags, flag_named', [
    (['--pipeline-root', '/home/me/tfx'], '--pipeline-root'),
    (['--schedule', '0 3 * * 1'], '--schedule'),
    (['--submit'], '--host'),
    (['--gpu-toleration', 'nvidia.com/gpu:Sometimes'], '--gpu-toleration'),
    (['--gpu-node-selector', 'pool'], '--gpu-node-selector'),
    (['--resources', 'Transform=4'], '--resources'),
    (['--job-endpoint', 'flink:8099'], '--job-endpoint'),
    (['--submit', '--host', 'h', '--param', 'epoch=5'], 'unknown run parameter'),
    (['--submit', '--host', 'h', '--param', 'epochs=many'], 'takes int values'),
    (['--submit', '--host', 'h', '--param', 'epochs'], 'NAME=VALUE'),
    (['--param', 'epochs=5'], '--param sets a value for --submit and --schedule'),
    (['--alert-webhook', 'hooks.example/x'], '--alert-webhook'),
    (['--kfp-version', '2.0.5'], 'older than the oldest supported backend, 2.5.0'),
    (['--kfp-version', '2.14'], 'MAJOR.MINOR.PATCH'),
])
def test_bad_flags_are_one_line_usage_errors(flags, flag_named, capsys):
  with pytest.raises(SystemExit) as exit_info:
    kubeflow_runner.parse_args(REQUIRED_FLAGS + flags)
  assert exit_info.value.code == 2
  assert flag_named in capsys.readouterr().err.splitlines()[-1]


@pytest.mark.parametrize('flags, line', [
    (['--epochs', '0'], '--epochs must be at least 1'),
    (['--batch-size', '-2'], '--batch-size must be at least 1'),
    (['--min-site-malignant-examples', '0'], '--min-site-malignant-examples must be at least 1'),
])
def test_a_value_the_config_refuses_is_one_line_naming_the_flag(flags, line, tmp_path,
                                                               capsys):
  path = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + ['--output', str(path)] + flags) == 2
  assert capsys.readouterr().err.splitlines() == [
      f'kubeflow_runner.py: error: {line} (a whole number), got {flags[1]}']
  assert not path.exists()


def test_an_alert_webhook_adds_an_exit_handler_after_the_pipeline_dag(tmp_path):
  path = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + [
      '--output', str(path), '--alert-webhook', 'https://hooks.example/T0/B0/x']) == 0
  pipeline_spec, _ = read_package(path)
  root_tasks = pipeline_spec.root.dag.tasks
  assert set(root_tasks) == {kubeflow_utils.TFX_DAG_NAME, kubeflow_configs.ALERT_TASK_ID}
  dag = kubeflow_compiler.pipeline_dag(pipeline_spec)
  assert set(dag.tasks) == set(EXPECTED_EDGES)
  alert = root_tasks[kubeflow_configs.ALERT_TASK_ID]
  assert list(alert.dependent_tasks) == [kubeflow_utils.TFX_DAG_NAME]
  assert alert.trigger_policy.strategy == (
      pipeline_spec_pb2.PipelineTaskSpec.TriggerPolicy.ALL_UPSTREAM_TASKS_COMPLETED)
  assert alert.inputs.parameters['final_status'].task_final_status.producer_task == (
      kubeflow_utils.TFX_DAG_NAME)
  assert (alert.inputs.parameters['webhook_url'].runtime_value.constant.string_value
          == 'https://hooks.example/T0/B0/x')
  assert pipeline_spec.components[kubeflow_configs.ALERT_TASK_ID].input_definitions \
      .parameters['final_status'].parameter_type == (
          pipeline_spec_pb2.ParameterType.TASK_FINAL_STATUS)
  # The run parameters reach the tasks through the sub-DAG's own inputs.
  sub_dag = pipeline_spec.components[kubeflow_utils.TFX_DAG_NAME]
  assert set(sub_dag.input_definitions.parameters) == set(run_parameters.NAMES)
  for name in run_parameters.NAMES:
    passed = root_tasks[kubeflow_utils.TFX_DAG_NAME].inputs.parameters[name]
    assert passed.component_input_parameter == name
  assert not dag.tasks['DataFingerprint'].caching_options.enable_cache


def test_an_exit_handler_for_a_backend_that_refuses_one_is_refused(tmp_path, capsys):
  path = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + [
      '--output', str(path), '--kfp-version', '2.5.0',
      '--alert-webhook', 'https://hooks.example/T0/B0/x']) == 2
  [line] = capsys.readouterr().err.splitlines()
  assert line.startswith('kubeflow_runner.py: KFP 2.5.0 cannot run the exit handler '
                         '(--alert-webhook): it needs 2.14.0 or later')
  assert not path.exists()


def test_without_an_alert_webhook_there_is_no_exit_handler(package):
  pipeline_spec, _ = package
  assert kubeflow_utils.TFX_DAG_NAME not in pipeline_spec.components
  assert kubeflow_configs.ALERT_TASK_ID not in pipeline_spec.root.dag.tasks


def test_a_run_parameter_value_the_config_refuses_is_one_line_naming_it(tmp_path, capsys):
  path = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + [
      '--output', str(path), '--submit', '--host', 'http://localhost:1',
      '--param', 'min_accuracy=1.5']) == 2
  assert capsys.readouterr().err.splitlines() == [
      'kubeflow_runner.py: error: --param min_accuracy must be a number from 0 to 1, '
      'got 1.5']
  assert not path.exists()


def test_a_remote_beam_runner_without_its_required_options_is_refused(tmp_path, capsys):
  path = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + [
      '--output', str(path), '--beam-runner', 'dataflow',
      '--beam-arg=--project=p']) == 2
  assert '--region' in capsys.readouterr().err
  assert not path.exists()


def test_resources_for_a_component_the_pipeline_lacks_are_refused(tmp_path, capsys):
  path = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + [
      '--output', str(path), '--resources', 'Tranform=4,16']) == 2
  message = capsys.readouterr().err.splitlines()[-1]
  assert 'Tranform' in message and 'Transform' in message
  assert not path.exists()


def test_a_portable_job_server_is_given_by_its_endpoint(tmp_path):
  path = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + [
      '--output', str(path), '--beam-runner', 'portable',
      '--job-endpoint', 'flink-jobserver:8099']) == 0
  pipeline_spec, _ = read_package(path)
  _, statistics_gen = executor_of(pipeline_spec, 'StatisticsGen')
  args = list(statistics_gen.container.args)
  assert '--runner=PortableRunner' in args and '--job_endpoint=flink-jobserver:8099' in args


def test_named_sites_are_compiled_in_with_their_columns(tmp_path):
  path = tmp_path / 'pipeline.yaml'
  flags = ['--image', IMAGE, '--pipeline-root', PIPELINE_ROOT, '--serving-dir', SERVING_DIR]
  assert kubeflow_runner.main(flags + [
      '--data-root', f'busi={DATA_ROOT}', '--data-root', 'bus_bra=gs://busi-bucket/bus_bra',
      '--manifest-columns', 'bus_bra=bus_bra', '--output', str(path)]) == 0
  pipeline_spec, _ = read_package(path)
  assert parameter(pipeline_spec, 'ImageExampleGen', 'input_base') == (
      f'busi={DATA_ROOT};bus_bra=gs://busi-bucket/bus_bra')
  custom_config = parameter(pipeline_spec, 'ImageExampleGen', 'custom_config')
  assert 'bus_data.csv' in custom_config and 'gs://busi-bucket/bus_bra' in custom_config
  assert 'data_root' not in pipeline_spec.root.input_definitions.parameters


def test_a_site_outside_object_storage_names_the_flag(capsys):
  with pytest.raises(SystemExit) as exit_info:
    kubeflow_runner.parse_args(REQUIRED_FLAGS + ['--data-root', 'bus_bra=/local/bus_bra'])
  assert exit_info.value.code == 2
  assert "--data-root must be object storage" in capsys.readouterr().err.splitlines()[-1]


def test_the_per_site_flags_reach_the_evaluation_config():
  pipeline_config, _ = kubeflow_runner.build_configs(kubeflow_runner.parse_args(
      REQUIRED_FLAGS + ['--min-site-malignant-examples', '4', '--slice-by-device']))
  assert pipeline_config.evaluation.min_site_malignant_examples == 4
  assert pipeline_config.evaluation.slice_by_device


def _pipeline_flags(parser):
  """Each pipeline flag of a runner's parser: what a user can type and gets by default."""
  return {option: (action.dest, action.default, action.choices, action.type, action.nargs,
                   type(action).__name__, action.const)
          for action in parser._actions  # pylint: disable=protected-access
          for option in action.option_strings
          if option in config_flags.PIPELINE_FLAGS}


def test_both_runners_take_the_same_pipeline_flags():
  local_flags = _pipeline_flags(local_runner.make_parser())
  assert set(local_flags) == set(config_flags.PIPELINE_FLAGS)
  assert _pipeline_flags(kubeflow_runner.make_parser()) == local_flags
  # Everything else the local runner takes is about the local machine: where its
  # outputs go, and the no-op check against the served model's card.
  local_options = {option for action in local_runner.make_parser()._actions  # pylint: disable=protected-access
                   for option in action.option_strings}
  assert local_options - set(config_flags.PIPELINE_FLAGS) == {
      '-h', '--help', '--output-dir', '--retrain-unchanged'}


def training_config_of(pipeline_spec):
  return json.loads(parameter(pipeline_spec, 'Trainer', 'custom_config'))


def test_the_model_and_data_flags_reach_the_compiled_trainer(tmp_path):
  path = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + [
      '--output', str(path), '--model', 'busi_net', '--splits', '60,20,20',
      '--label-conflicts', 'keep', '--max-quarantined-fraction', '0.1', '--strict',
      '--keep-versions', '3', '--beam-runner', 'direct', '--beam-workers', '0',
      '--warm-start', '--warm-start-epochs', '7']) == 0
  pipeline_spec, _ = read_package(path)
  trainer_config = training_config_of(pipeline_spec)
  assert trainer_config['model']['name'] == 'busi_net'
  assert trainer_config['training']['warm_start_epochs'] == 7
  assert trainer_config['model']['image_size'] == registry.spec('busi_net').image_size
  declared = pipeline_spec.root.input_definitions.parameters
  assert declared['warm_start'].default_value.number_value == 1
  assert declared['epochs'].default_value.number_value == registry.spec('busi_net').epochs
  splits = json.loads(parameter(pipeline_spec, 'ImageExampleGen', 'output_config'))
  assert [split['hash_buckets'] for split in splits['split_config']['splits']] == [60, 20, 20]
  data_rules = json.loads(parameter(pipeline_spec, 'ImageExampleGen', 'custom_config'))
  data_rules = data_rules['custom_config']['value']
  assert data_rules['label_conflicts'] == 'keep'
  assert data_rules['strict'] is True and data_rules['max_quarantined_fraction'] == 0.1
  _, statistics_gen = executor_of(pipeline_spec, 'StatisticsGen')
  assert '--direct_num_workers=0' in statistics_gen.container.args


def test_a_credentials_secret_is_mounted_and_named_in_every_task(tmp_path):
  path = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + [
      '--output', str(path), '--credentials-secret', 'busi-gcs-key',
      '--alert-webhook', 'https://hooks.example/T0/B0/x']) == 0
  pipeline_spec, platform_spec = read_package(path)
  executors = pipeline_spec_pb2.PipelineDeploymentConfig()
  json_format.ParseDict(json_format.MessageToDict(pipeline_spec.deployment_spec), executors)
  kubernetes = json_format.MessageToDict(
      platform_spec.platforms['kubernetes'].deployment_spec)['executors']
  assert set(kubernetes) == set(executors.executors)  # the exit handler's too
  key_file = '/var/secrets/google/key.json'
  for label, executor in executors.executors.items():
    assert [(env.name, env.value) for env in executor.container.env] == [
        ('GOOGLE_APPLICATION_CREDENTIALS', key_file)]
    assert kubernetes[label]['secretAsVolume'] == [
        {'secretName': 'busi-gcs-key', 'mountPath': '/var/secrets/google'}]
  trainer_label, _ = executor_of(pipeline_spec, 'Trainer')
  assert kubernetes[trainer_label]['tolerations']


def test_the_mounted_key_is_what_google_clients_authenticate_with(tmp_path, monkeypatch):
  """google-cloud-storage (folder markers) and the KFP launcher find the key through the env."""
  from cryptography.hazmat.primitives import serialization  # pylint: disable=g-import-not-at-top
  from cryptography.hazmat.primitives.asymmetric import rsa  # pylint: disable=g-import-not-at-top
  import google.auth  # pylint: disable=g-import-not-at-top
  from google.oauth2 import service_account  # pylint: disable=g-import-not-at-top
  private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
  key = {'type': 'service_account', 'project_id': 'busi-project',
         'private_key_id': 'k1', 'client_id': '1',
         'client_email': 'pipeline@busi-project.iam.gserviceaccount.com',
         'token_uri': 'https://oauth2.googleapis.com/token',
         'private_key': private_key.private_bytes(
             serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
             serialization.NoEncryption()).decode()}
  key_file = tmp_path / 'key.json'
  key_file.write_text(json.dumps(key))
  monkeypatch.setenv('GOOGLE_APPLICATION_CREDENTIALS', str(key_file))
  credentials, project = google.auth.default()
  assert isinstance(credentials, service_account.Credentials)
  assert credentials.service_account_email == key['client_email']
  assert project == 'busi-project'


def test_a_credentials_secret_that_is_no_kubernetes_name_is_refused(capsys):
  with pytest.raises(SystemExit):
    kubeflow_runner.parse_args(REQUIRED_FLAGS + ['--credentials-secret', 'My_Key'])
  assert '--credentials-secret takes a Kubernetes secret name' in capsys.readouterr().err


def test_a_vertex_package_loads_in_the_vertex_sdk_and_builds_its_runtime_config(tmp_path):
  from google.auth import credentials as auth_credentials  # pylint: disable=g-import-not-at-top
  from google.cloud import aiplatform  # pylint: disable=g-import-not-at-top
  path = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + [
      '--output', str(path), '--target', 'vertex', '--model', 'busi_net', '--gpus', '1',
      '--accelerator-type', 'NVIDIA_L4', '--machine-type', 'g2-standard-8',
      '--alert-webhook', 'https://hooks.example/T0/B0/x']) == 0
  with open(path) as f:
    assert len(list(yaml.safe_load_all(f))) == 1
  pipeline_spec, platform_spec = read_package(path)
  assert not platform_spec.platforms
  _, trainer = executor_of(pipeline_spec, 'Trainer')
  assert trainer.container.resources.accelerator.type == 'NVIDIA_L4'
  assert trainer.container.resources.accelerator.count == 1
  # g2-standard-8's shape: Vertex AI picks the machine closest to it.
  assert trainer.container.resources.cpu_limit == 8
  assert trainer.container.resources.memory_limit == 32
  _, transform = executor_of(pipeline_spec, 'Transform')
  assert transform.container.resources.cpu_limit == 2  # the other tasks keep --cpu
  # The SDK's own loader and runtime-config builder, offline.
  job = aiplatform.PipelineJob(
      display_name='busi', template_path=str(path), pipeline_root='gs://busi-bucket/vertex',
      parameter_values={'epochs': 3, 'min_accuracy': 0.9}, project='busi-project',
      location='europe-west4', credentials=auth_credentials.AnonymousCredentials())
  runtime_config = job._gca_resource.runtime_config  # pylint: disable=protected-access
  assert runtime_config.gcs_output_directory == 'gs://busi-bucket/vertex'
  assert dict(runtime_config.parameter_values) == {'epochs': 3, 'min_accuracy': 0.9}
  assert job._gca_resource.pipeline_spec['pipelineInfo']['name'] == 'busi-ultrasound'  # pylint: disable=protected-access
  # What the SDK submits still asks for the machine's shape.
  executors = job._gca_resource.pipeline_spec['deploymentSpec']['executors']  # pylint: disable=protected-access
  [resources] = [executor['container']['resources'] for executor in executors.values()
                 if executor['container'].get('resources', {}).get('accelerator')]
  assert (resources['cpuLimit'], resources['memoryLimit']) == (8, 32)


@pytest.mark.parametrize('flags, named', [
    (['--gpu-toleration', 'a:NoSchedule'], '--gpu-toleration'),
    (['--credentials-secret', 'key'], '--credentials-secret'),
    (['--host', 'http://h'], '--host'),
    (['--accelerator-type', 'nvidia.com/gpu'], '--accelerator-type takes a Vertex AI GPU type'),
    (['--machine-type', 'g2-standard-8'], '--machine-type g2-standard-8 takes NVIDIA_L4, '
                                          'not --accelerator-type NVIDIA_TESLA_T4'),
    (['--machine-type', 'g2-standard-24', '--accelerator-type', 'NVIDIA_L4'],
     '--machine-type g2-standard-24 runs with 2 GPU(s), not --gpus 1'),
    (['--machine-type', 'n1-standard-8', '--trainer-cpu', '4'], 'leave out --trainer-cpu'),
    (['--machine-type', 'n1-standard-7'], '--machine-type takes one of n1-standard-4'),
])
def test_kubernetes_settings_are_refused_for_vertex(flags, named, capsys):
  with pytest.raises(SystemExit):
    kubeflow_runner.parse_args(REQUIRED_FLAGS + ['--target', 'vertex'] + flags)
  assert named in capsys.readouterr().err.splitlines()[-1]


def test_a_machine_type_is_refused_for_kubernetes(capsys):
  with pytest.raises(SystemExit):
    kubeflow_runner.parse_args(REQUIRED_FLAGS + ['--machine-type', 'n1-standard-8'])
  assert '--machine-type is for --target vertex' in capsys.readouterr().err.splitlines()[-1]


def test_an_n1_machine_type_sets_the_trainer_shape_for_its_gpus():
  args = kubeflow_runner.parse_args(REQUIRED_FLAGS + [
      '--target', 'vertex', '--machine-type', 'n1-highmem-8', '--gpus', '2'])
  _, platform = kubeflow_runner.build_configs(args)
  assert platform.trainer_resources == kubeflow_configs.Resources(cpu=8, memory_gb=52)
  assert (platform.gpu.resource, platform.gpu.count) == ('NVIDIA_TESLA_T4', 2)
