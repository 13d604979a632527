"""The compiled Kubeflow package, executed task by task as KFP's launcher runs it.

Packages are compiled for one local pipeline root (floors of 0, so tiny data
can be blessed; 32-pixel images, five scans a class, the fewest that put each
class in every split) and run by tests/kfp_launcher.py, each task as the
image's non-root user, on the backends of its `BACKENDS` table:

1. the whole DAG on KFP 2.17 (executor logs, named outputs); it pushes;
2. a package compiled with another training seed, on the same data, on KFP
   2.14, with two run parameters set as a scheduled run would set them: 2
   epochs (compiled: 1) and an accuracy floor of 1.0 (compiled: 0). The tasks
   whose inputs are unchanged (the data tasks before Transform) hand on run
   1's outputs, as KFP's cache reuses a task whose inputs are unchanged, and
   so does Transform (its config holds only what preprocessing reads); the
   Trainer (the seed is in its config), the Evaluator, now with run 1's pushed
   model as its served baseline, and the Pusher execute (KFP's cache itself,
   keyed on the data's fingerprint, is emulated in kubeflow_noop_test.py);
3. the Evaluator and the Pusher of run 2 again, with Vertex AI's inputs;
4. on KFP 2.5, the oldest supported backend, one task (ImportSchemaGen), and
   the refusal of a package with an exit handler;
5. a package with an alert webhook (a local server): a run given an empty
   data root on KFP 2.14, whose ImageExampleGen fails and whose exit handler
   posts the alert; and the exit handler alone after a run that succeeded, with
   each final state a backend sends for success, which posts nothing.

Each task costs TensorFlow's and TFX's start-up (10 to 20 s), so no task runs
more often than one of these points needs.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import tempfile

import pytest
import yaml

import kubeflow_runner
from blessing import evaluation_metrics
from contracts import configs
from contracts import features
from contracts import names
from orchestration.kubeflow import backends as kfp_backends
from orchestration.kubeflow import compiler as kubeflow_compiler
from serving import serving_config
from tests import kfp_launcher
from tests.fake_webhook import FakeWebhook
from tests.fixtures import synthetic_busi
from tests.kubeflow_runner_test import REQUIRED_FLAGS

pytestmark = pytest.mark.e2e

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RETRAINED = [names.TRAINER, names.EVALUATOR, names.PUSHER]
# What the second run sets; the package was compiled with 1 epoch and floors of 0.
SECOND_RUN_PARAMETERS = {'epochs': 2, 'min_accuracy': 1.0}


@pytest.fixture(scope='module')
def pipeline_root():
  """The one folder every case's packages, data, artifacts and served models live in.

  Writable by the tasks' non-root user, so outside pytest's private temp folder.
  """
  root = pathlib.Path(tempfile.mkdtemp(prefix='kfp_launcher_'))
  root.chmod(0o777)
  data_root = synthetic_busi.write_dataset(str(root / 'data'), per_class=5)
  yield root, data_root
  shutil.rmtree(root, ignore_errors=True)


def compile_package(root, file_name: str, seed: int, alert_webhook: str = '',
                    kfp_version: str = kfp_backends.DEFAULT_VERSION):
  """A package as kubeflow_runner.py compiles it, pointed at the local root."""
  args = kubeflow_runner.parse_args(REQUIRED_FLAGS + [
      '--epochs', '1', '--cpu', '1', '--gpus', '0', '--kfp-version', kfp_version,
      '--beam-arg=--direct_running_mode=in_memory'] +
      ['--alert-webhook', alert_webhook] * bool(alert_webhook))
  pipeline_config, platform = kubeflow_runner.build_configs(args)
  pipeline_config = dataclasses.replace(
      pipeline_config,
      pipeline_root=str(root / 'tfx'), serving_dir=str(root / 'serving'),
      schema_file=os.path.join(configs.SCHEMA_DIR, 'schema.pbtxt'),
      model=dataclasses.replace(pipeline_config.model, image_size=32),
      training=dataclasses.replace(pipeline_config.training, seed=seed),
      evaluation=dataclasses.replace(pipeline_config.evaluation, min_accuracy=0.0,
                                     min_malignant_recall=0.0))
  package = str(root / file_name)
  kubeflow_compiler.compile_package(
      kubeflow_runner.kubeflow_pipeline(pipeline_config), platform, package)
  return package, pipeline_config.model_serving_dir


def pipeline_spec(package: str):
  with open(package) as f:
    return next(yaml.safe_load_all(f))


def blessing_of(result):
  return result.outputs[names.EVALUATOR]['blessing']['metadata']


def served_versions(model_serving_dir):
  return sorted(name for name in os.listdir(model_serving_dir) if name.isdigit())


@pytest.fixture(scope='module')
def open_source_runs(pipeline_root):
  root, data_root = pipeline_root
  first_package, model_serving_dir = compile_package(root, 'pipeline.yaml', seed=42)
  second_package, _ = compile_package(root, 'pipeline_seed_43.yaml', seed=43)
  # The data root is a run parameter: the compiled default is a gs:// path.
  parameters = {'data_root': data_root}
  first = kfp_launcher.Launcher(first_package, str(root / 'launcher'), _PROJECT_DIR,
                                kfp_launcher.KFP_2_17).run('run-1', parameters)
  pushed_first = served_versions(model_serving_dir)
  changed = kfp_launcher.changed_tasks(pipeline_spec(second_package),
                                       pipeline_spec(first_package))
  second = kfp_launcher.Launcher(second_package, str(root / 'launcher'), _PROJECT_DIR,
                                 kfp_launcher.KFP_2_14).run(
                                     'run-2', {**parameters, **SECOND_RUN_PARAMETERS},
                                     reuse=first, execute=changed)
  return first, pushed_first, changed, second, second_package, model_serving_dir


def test_open_source_first_run_pushes_a_model(open_source_runs):
  first, pushed_first, *_ = open_source_runs
  assert set(first.seconds) == set(first.outputs)
  # KFP 2.17 names each output by its key, below a per-run salt.
  assert '/run-1-salt/' in first.outputs[names.TRAINER]['model']['uri']
  assert blessing_of(first)['blessed'] == 1
  assert blessing_of(first)['baseline_served_version'] == ''
  assert len(pushed_first) == 1
  pushed = first.outputs[names.PUSHER]['pushed_model']['metadata']
  assert pushed['pushed'] == 1


def test_open_source_second_run_retrains_against_the_served_model_and_finishes(
    open_source_runs):
  first, pushed_first, changed, second, *_ = open_source_runs
  assert changed == RETRAINED
  assert sorted(second.seconds) == sorted(RETRAINED)
  assert (second.outputs[names.TRAINER]['model']['uri']
          != first.outputs[names.TRAINER]['model']['uri'])
  blessing = blessing_of(second)
  assert blessing['baseline_served_version'] == pushed_first[0]
  assert 'baseline_model_id' not in blessing
  assert blessing['blessed'] in (0, 1)
  assert names.PUSHER in second.outputs


def training_config_of(result):
  return json.loads(
      result.outputs[names.TRAINER]['model']['metadata'][names.TRAINING_CONFIG_PROPERTY])


def test_run_parameters_are_obeyed_without_recompiling(open_source_runs):
  first, pushed_first, _, second, second_package, model_serving_dir = open_source_runs
  declared = pipeline_spec(second_package)['root']['inputDefinitions']['parameters']
  assert declared['epochs']['defaultValue'] == 1
  assert declared['min_accuracy']['defaultValue'] == 0.0
  assert training_config_of(first)['training']['epochs'] == 1
  assert training_config_of(second)['training']['epochs'] == 2
  with open(os.path.join(second.outputs[names.TRAINER]['model_run']['uri'],
                         names.TRAINING_SUMMARY_FILE)) as f:
    assert json.load(f)['epochs_run'] == 2
  rules = json.loads(blessing_of(second)[names.BLESSING_RULES_PROPERTY])
  assert rules['min_accuracy'] == 1.0 and rules['min_malignant_recall'] == 0.0
  accuracy = evaluation_metrics.overall_metrics(
      second.outputs[names.EVALUATOR]['evaluation']['uri'],
      features.CLASS_NAMES)[names.ACCURACY_METRIC]
  if accuracy < 1.0:  # a perfect score would pass even a floor of 1
    assert blessing_of(second)['blessed'] == 0
    assert served_versions(model_serving_dir) == pushed_first


def test_vertex_shaped_inputs_run_against_the_served_model(pipeline_root, open_source_runs):
  root, _ = pipeline_root
  *_, second, second_package, model_serving_dir = open_source_runs
  # A second push lists its version; `stable` stays until `serving complete`.
  stable = serving_config.read_served_versions(model_serving_dir).stable
  launcher = kfp_launcher.Launcher(second_package, str(root / 'launcher'), _PROJECT_DIR,
                                   kfp_launcher.VERTEX)
  result = launcher.run('run-vertex', reuse=second,
                        execute=(names.EVALUATOR, names.PUSHER))
  assert sorted(result.seconds) == sorted([names.EVALUATOR, names.PUSHER])
  assert blessing_of(result)['baseline_served_version'] == str(stable)
  assert names.PUSHER in result.outputs


def test_the_oldest_supported_backend_runs_a_task(pipeline_root):
  """KFP 2.5's driver adds the executor-logs output, typed system.Artifact, to every task."""
  root, _ = pipeline_root
  package, _ = compile_package(root, 'pipeline_kfp_2_5.yaml', seed=42, kfp_version='2.5.0')
  launcher = kfp_launcher.Launcher(package, str(root / 'launcher'), _PROJECT_DIR,
                                   kfp_launcher.KFP_2_5)
  produced = launcher.run_task(names.SCHEMA_IMPORTER, 'run-2-5')
  assert os.listdir(produced['schema']['uri']) == ['schema.pbtxt']


def test_the_oldest_supported_backend_refuses_an_exit_handler(pipeline_root):
  root, _ = pipeline_root
  package, _ = compile_package(root, 'pipeline_alert_2_14.yaml', seed=42,
                               alert_webhook='http://127.0.0.1:9/hook')
  with pytest.raises(kfp_launcher.BackendRefused, match='task final status not supported'):
    kfp_launcher.Launcher(package, str(root / 'launcher'), _PROJECT_DIR, kfp_launcher.KFP_2_5)


@pytest.mark.parametrize('backend', [kfp_launcher.KFP_2_17, kfp_launcher.VERTEX],
                         ids=lambda backend: backend.succeeded_state)
def test_the_exit_handler_posts_nothing_after_a_run_that_succeeded(pipeline_root, backend):
  root, _ = pipeline_root
  with FakeWebhook() as webhook:
    package, _ = compile_package(root, 'pipeline_alert.yaml', seed=42,
                                 alert_webhook=webhook.url)
    launcher = kfp_launcher.Launcher(package, str(root / 'launcher'), _PROJECT_DIR, backend)
    launcher.run_exit_tasks(f'run-ok-{backend.succeeded_state.lower()}', failure=None)
  assert webhook.posts == []


def test_a_failed_run_is_reported_by_the_exit_handler(pipeline_root):
  root, _ = pipeline_root
  empty_data_root = root / 'no_images'
  empty_data_root.mkdir()
  with FakeWebhook() as webhook:
    package, _ = compile_package(root, 'pipeline_alert.yaml', seed=42,
                                 alert_webhook=webhook.url)
    launcher = kfp_launcher.Launcher(package, str(root / 'launcher'), _PROJECT_DIR,
                                     kfp_launcher.KFP_2_14)
    with pytest.raises(kfp_launcher.TaskFailed) as failed:
      launcher.run('run-failing', {'data_root': str(empty_data_root)})
  # The run parameter reached ImageExampleGen through the sub-DAG's inputs.
  assert failed.value.task == names.EXAMPLE_GEN
  assert str(empty_data_root) in failed.value.log
  [alert] = webhook.posts
  assert alert['json']['state'] == 'FAILED'
  assert alert['json']['run'] == 'run-failing'
  assert alert['json']['pipeline'] == 'busi-ultrasound'
  # The open-source driver names the sub-DAG, with no error message.
  assert alert['json']['text'] == 'Pipeline busi-ultrasound run run-failing ended FAILED in tfx-dag'
  assert alert['json']['error'] == ''
