"""kubeflow_runner.py compiles the real pipeline into a package KFP v2 accepts.

The package is read back the way the kfp client reads it: YAML documents parsed
into kfp's PipelineSpec and PlatformSpec protos (unknown fields fail).
"""

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

import kubeflow_runner
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
    'ImageExampleGen': set(),
    'StatisticsGen': {'ImageExampleGen', 'ImportSchemaGen'},
    'ImportSchemaGen': set(),
    'ExampleValidator': {'StatisticsGen', 'ImportSchemaGen'},
    'DataValidationGate': {'ExampleValidator', 'ImportSchemaGen'},
    'Transform': {'ImageExampleGen', 'DataValidationGate'},
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
      '--trainer-memory-gb', '24', '--resources', 'Transform=5,20']) == 0
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
    assert '--runner=DirectRunner' in executor.container.args, task


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
  data_root = pipeline_spec.root.dag.tasks['ImageExampleGen'].inputs.parameters['input_base']
  assert data_root.component_input_parameter == kubeflow_configs.DATA_ROOT_PARAMETER
  assert pipeline_spec.root.input_definitions.parameters[
      kubeflow_configs.DATA_ROOT_PARAMETER].default_value.string_value == DATA_ROOT
  assert parameter(pipeline_spec, 'ImportSchemaGen', 'schema_file') == (
      kubeflow_configs.IMAGE_SCHEMA_FILE)
  assert parameter(pipeline_spec, 'ServedBaselineEvaluator', 'serving_model_dir') == (
      f'{SERVING_DIR}/busi_classifier')
  assert f'{SERVING_DIR}/busi_classifier' in parameter(
      pipeline_spec, 'Pusher', 'push_destination')


def test_new_images_under_the_same_data_root_are_never_served_from_cache(package):
  pipeline_spec, _ = package
  cached = {name for name, task in pipeline_spec.root.dag.tasks.items()
            if task.caching_options.enable_cache}
  assert cached == set(EXPECTED_EDGES) - {'ImageExampleGen'}


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


def test_a_remote_beam_runner_without_its_required_options_is_refused(tmp_path, capsys):
  path = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + [
      '--output', str(path), '--beam-runner', 'DataflowRunner',
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
      '--output', str(path), '--beam-runner', 'PortableRunner',
      '--job-endpoint', 'flink-jobserver:8099']) == 0
  pipeline_spec, _ = read_package(path)
  _, statistics_gen = executor_of(pipeline_spec, 'StatisticsGen')
  args = list(statistics_gen.container.args)
  assert '--runner=PortableRunner' in args and '--job_endpoint=flink-jobserver:8099' in args


def test_the_per_site_flags_reach_the_evaluation_config():
  pipeline_config, _ = kubeflow_runner.build_configs(kubeflow_runner.parse_args(
      REQUIRED_FLAGS + ['--min-site-malignant-examples', '4', '--slice-by-device']))
  assert pipeline_config.evaluation.min_site_malignant_examples == 4
  assert pipeline_config.evaluation.slice_by_device
