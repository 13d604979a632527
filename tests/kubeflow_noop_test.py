"""The compiled package lets KFP's cache decide whether a scheduled run has anything new.

The package's first task, DataFingerprint, fingerprints the data and hands
the fingerprint to ImageExampleGen as a parameter, which KFP's cache key holds
(components/data_fingerprint.py); ImageExampleGen is cached, DataFingerprint
never. These are the package's and the emulated cache key's checks; the
schedule itself (a run on unchanged data runs DataFingerprint alone, one on
grown data retrains warm-started) runs in tests/kubeflow_launcher_test.py, on
the runs it already makes.
"""

from google.protobuf import json_format
import pytest

import kubeflow_runner
from components import data_fingerprint
from components.image_example_gen import driver
from contracts import configs
from contracts import names
from orchestration.kubeflow import compiler as kubeflow_compiler
from tests import kfp_launcher
from tests.fixtures import synthetic_busi
from tests.kubeflow_runner_test import REQUIRED_FLAGS
from tests.kubeflow_runner_test import read_package


def _dag(path):
  pipeline_spec, _ = read_package(path)
  return pipeline_spec, kubeflow_compiler.pipeline_dag(pipeline_spec)


@pytest.mark.parametrize('alert', [False, True], ids=['root', 'sub-dag'])
def test_image_example_gen_is_cached_on_the_fingerprint_task_output(tmp_path, alert):
  path = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + ['--output', str(path)] + [
      '--alert-webhook', 'https://hooks.example/T0/B0/x'] * alert) == 0
  pipeline_spec, dag = _dag(path)
  fingerprint = dag.tasks[names.DATA_FINGERPRINT]
  assert not fingerprint.caching_options.enable_cache
  assert not fingerprint.dependent_tasks
  assert fingerprint.inputs.parameters['input_base'].component_input_parameter == 'data_root'
  declared = pipeline_spec.components[fingerprint.component_ref.name].output_definitions
  assert json_format.MessageToDict(declared.parameters[data_fingerprint.FINGERPRINT_KEY]) == {
      'parameterType': 'STRING'}
  example_gen = dag.tasks[names.EXAMPLE_GEN]
  assert example_gen.caching_options.enable_cache
  source = example_gen.inputs.parameters['input_fingerprint'].task_output_parameter
  # KFP's driver finds the producer by its task name (TFX 1.16 writes `<id>_task`).
  assert (source.producer_task, source.output_parameter_key) == (
      names.DATA_FINGERPRINT, data_fingerprint.FINGERPRINT_KEY)
  assert source.producer_task in dag.tasks
  assert list(example_gen.dependent_tasks) == [names.DATA_FINGERPRINT]


def test_no_cache_turns_off_every_task(tmp_path):
  path = tmp_path / 'pipeline.yaml'
  assert kubeflow_runner.main(REQUIRED_FLAGS + ['--output', str(path), '--no-cache']) == 0
  _, dag = _dag(path)
  assert not any(task.caching_options.enable_cache for task in dag.tasks.values())


def test_the_fingerprint_is_image_example_gens_and_its_line_compares_with_the_served_card(
    tmp_path):
  data_root = synthetic_busi.write_dataset(str(tmp_path / 'data'), per_class=2)
  fingerprint = data_fingerprint.fingerprint_of(data_root, '[]')
  assert fingerprint == driver.folder_fingerprint(data_root)
  sites = [configs.Site('busi', data_root)]
  assert data_fingerprint.fingerprint_of(
      '', data_fingerprint.sites_parameter(sites)) == driver.sites_fingerprint(sites)
  line = data_fingerprint.summary_line(fingerprint, str(tmp_path / 'nothing_served'))
  assert line.startswith('New data: no served version')


def test_the_emulated_cache_key_is_kfps_inputs_not_the_uris():
  component = {'outputDefinitions': {'parameters': {'p': {'parameterType': 'STRING'}}}}
  container = {'image': 'i', 'command': ['python'], 'args': ['{{$}}']}

  def executor_input(value, uri):
    return {'inputs': {'parameterValues': {'input_fingerprint': value},
                       'artifacts': {'a': {'artifacts': [{'name': '7', 'uri': uri}]}}},
            'outputs': {'artifacts': {'o': {'artifacts': [{'uri': uri + '/o', 'type': {},
                                                           'metadata': {}}]}},
                        'parameters': {'p': {'outputFile': uri + '/p'}}}}

  key = kfp_launcher.cache_key(executor_input('sha256 1', '/run-1'), component, container)
  assert kfp_launcher.cache_key(executor_input('sha256 1', '/run-2'), component,
                                container) == key
  assert kfp_launcher.cache_key(executor_input('sha256 2', '/run-1'), component,
                                container) != key
