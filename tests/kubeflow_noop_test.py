"""Retraining on a Kubeflow schedule: unchanged data runs one cheap task, grown data retrains.

The compiled package's first task, DataFingerprint, fingerprints the data and
hands the fingerprint to ImageExampleGen as a parameter, which KFP's cache key
holds (components/data_fingerprint.py). The package checks are cheap; the
emulated schedule (`e2e`) runs successive runs of one compiled package through
tests/kfp_launcher.py with one `ExecutionCache`, as KFP 2.17 runs a recurring
run: the first trains and pushes; the second, on the same data, executes
DataFingerprint alone and says so in one line; the third, on grown data with
the `warm_start` run parameter set, reads the data again, keeps every old
image in its split, starts from the served model's weights, is compared with
it and pushed. A new scanner flagged as drift is the local scenario's
(tests/retraining_e2e_test.py): sites are compiled into the package.
"""

import os
import pathlib
import shutil
import tempfile
import time

from google.protobuf import json_format
import pytest

import kubeflow_runner
from components import data_fingerprint
from components.image_example_gen import driver
from components.image_example_gen import executor_test
from contracts import configs
from contracts import names
from orchestration.kubeflow import compiler as kubeflow_compiler
from serving import model_card
from serving import serving_dir
from tests import kfp_launcher
from tests.fixtures import synthetic_busi
from tests.kubeflow_launcher_test import compile_package
from tests.kubeflow_launcher_test import served_versions
from tests.kubeflow_runner_test import REQUIRED_FLAGS
from tests.kubeflow_runner_test import read_package

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


@pytest.fixture(scope='module')
def schedule():
  """Two runs of one recurring run on the same data, through KFP 2.17's cache."""
  root = pathlib.Path(tempfile.mkdtemp(prefix='kfp_noop_'))
  root.chmod(0o777)
  data_root = synthetic_busi.write_dataset(str(root / 'data'), per_class=5)
  package, model_serving_dir = compile_package(root, 'pipeline.yaml', seed=42)
  launcher = kfp_launcher.Launcher(package, str(root / 'launcher'), _PROJECT_DIR,
                                   kfp_launcher.KFP_2_17)
  cache = kfp_launcher.ExecutionCache()
  parameters = {'data_root': data_root}
  first = launcher.run('scheduled-1', parameters, cache=cache)
  pushed_first = served_versions(model_serving_dir)
  started = time.monotonic()
  second = launcher.run('scheduled-2', parameters, cache=cache)
  second_seconds = time.monotonic() - started
  print(f'\nNo-op scheduled run: {second_seconds:.1f} s, tasks run: {sorted(second.seconds)}, '
        f'served from the cache: {len(second.cached)}')
  served_second = served_versions(model_serving_dir)
  yield (root, data_root, launcher, first, pushed_first, second, served_second,
         model_serving_dir, cache)
  shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope='module')
def grown(schedule):
  """The schedule's third run: three new scans per class, warm start on for this run."""
  root, data_root, launcher, _, _, _, _, _, cache = schedule
  new = synthetic_busi.write_dataset(str(root / 'new'), per_class=3, seed=11)
  for label in synthetic_busi.CLASSES:
    for n in range(1, 4):
      for suffix in ('', '_mask'):
        shutil.copy(os.path.join(new, label, f'{label} ({n}){suffix}.png'),
                    os.path.join(data_root, label, f'{label} ({50 + n}){suffix}.png'))
  # The floors stay compiled at 0; a tolerance of 1 lets the tiny candidate
  # through the comparison, which the blessing still records.
  return launcher.run('scheduled-3', {'data_root': data_root, 'warm_start': 1,
                                      'regression_tolerance': 1.0}, cache=cache)


def _log(root, run_id, task):
  return (root / 'launcher' / run_id / task / 'log.txt').read_text()


@pytest.mark.e2e
def test_the_first_scheduled_run_trains_pushes_and_records_the_fingerprint(schedule):
  _, data_root, _, first, pushed_first, _, _, model_serving_dir, _ = schedule
  assert first.cached == []
  assert len(pushed_first) == 1
  fingerprint = first.parameters[names.DATA_FINGERPRINT, data_fingerprint.FINGERPRINT_KEY]
  assert fingerprint == driver.folder_fingerprint(data_root)
  # ImageExampleGen records it on the examples, and the model card names it.
  card = model_card.read_card(serving_dir.served_model_path(model_serving_dir))
  assert card.data.fingerprint == fingerprint


@pytest.mark.e2e
def test_a_scheduled_run_on_unchanged_data_runs_only_the_fingerprint(schedule):
  root, _, launcher, first, pushed_first, second, served_second, _, _ = schedule
  assert sorted(second.seconds) == [names.DATA_FINGERPRINT]
  every_task = set(kfp_launcher.pipeline_tasks(launcher.spec))
  assert set(second.cached) == every_task - {names.DATA_FINGERPRINT}
  # The cache handed on the first run's artifacts: nothing trained or pushed.
  assert (second.outputs[names.TRAINER]['model']['uri']
          == first.outputs[names.TRAINER]['model']['uri'])
  assert served_second == pushed_first
  lines = [line for line in _log(root, 'scheduled-2', names.DATA_FINGERPRINT).splitlines()
           if 'No new data' in line]
  assert len(lines) == 1
  assert f'version {pushed_first[0]} in service was trained on this very data' in lines[0]


@pytest.mark.e2e
def test_grown_data_is_new_and_retrains_from_the_served_model_keeping_old_splits(
    schedule, grown):
  root, data_root, launcher, first, pushed_first, _, _, model_serving_dir, _ = schedule
  fingerprint = grown.parameters[names.DATA_FINGERPRINT, data_fingerprint.FINGERPRINT_KEY]
  assert fingerprint == driver.folder_fingerprint(data_root)
  assert fingerprint != first.parameters[names.DATA_FINGERPRINT,
                                         data_fingerprint.FINGERPRINT_KEY]
  assert (f'New data: not what version {pushed_first[0]} in service was trained on'
          in _log(root, 'scheduled-3', names.DATA_FINGERPRINT))
  assert {names.EXAMPLE_GEN, names.TRAINER, names.EVALUATOR, names.PUSHER} <= set(grown.seconds)

  def examples(run):
    return executor_test.read_examples(
        launcher.bucket.path(run.outputs[names.EXAMPLE_GEN]['examples']['uri']))
  before, after = examples(first), examples(grown)
  assert len(after) == len(before) + 9
  assert {name: after[name][0] for name in before} == {
      name: split for name, (split, _) in before.items()}

  served = os.path.join(model_serving_dir, str(pushed_first[0]))
  assert (f'Warm start: from served version {pushed_first[0]} ({served}).'
          in _log(root, 'scheduled-3', names.TRAINER))
  pushed = served_versions(model_serving_dir)
  assert len(pushed) == 2 and pushed[0] == pushed_first[0]
  card = model_card.read_card(os.path.join(model_serving_dir, str(pushed[1])))
  assert card.baseline_version == str(pushed_first[0])
  assert card.started_from == served
  assert card.data.fingerprint == fingerprint
