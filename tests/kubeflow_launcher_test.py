"""The compiled Kubeflow package, executed task by task as KFP's launcher runs it.

Packages are compiled for a gs:// pipeline root that tests/kfp_launcher.py
fakes in a local folder, with the launcher's downloads and uploads around each
task (floors of 0, so tiny data can be blessed; 32-pixel images, five scans a
class, the fewest that put each class in every split), and run each task as
the image's non-root user, on the backends of its `BACKENDS` table:

1. the whole DAG on KFP 2.17 (executor logs, named outputs); it pushes;
   the same package again on the same data, through KFP's cache as a
   recurring run meets it (`ExecutionCache`): DataFingerprint alone runs,
   and says so in one line (components/data_fingerprint.py);
2. a package compiled with another training seed, on the same data, with two
   run parameters set as a scheduled run would set them: 2 epochs (compiled:
   1) and an accuracy floor of 1.0 (compiled: 0). The tasks whose inputs are
   unchanged (the data tasks before Transform) hand on run 1's outputs, as
   KFP's cache reuses a task whose inputs are unchanged, and so does
   Transform (its config holds only what preprocessing reads); the Trainer
   (the seed is in its config) and the Pusher execute on KFP 2.14, and the
   Evaluator, now with run 1's pushed model as its served baseline, on
   Vertex AI's executor input (that row's one task: open-source inputs reach
   the Evaluator in run 1);
3. the schedule's next run, on grown data with the `warm_start` run
   parameter set: ImageExampleGen reads again, every old image keeps its
   split, the Trainer starts from the served model's weights, and the
   candidate is compared with the served model and pushed; then an export
   from a new scanner, which DataDriftCheck names as drift in its log (the
   package's policy is `warn`; stopping is the local scenario's,
   tests/retraining_e2e_test.py). Only its data tasks run: the rest of the
   DAG is handed on, as the drift check is what this case is about.
4. on KFP 2.5, the oldest supported backend, one task (ImportSchemaGen), and
   the refusal of a package with an exit handler; a package with a local
   pipeline root, refused as the launcher fails its tasks;
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
import time

import pytest
import yaml

import kubeflow_runner
from blessing import evaluation_metrics
from components import data_fingerprint
from components import drift_check
from components.image_example_gen import driver
from components.image_example_gen import executor_test
from contracts import configs
from contracts import features
from contracts import names
from orchestration.kubeflow import compiler as kubeflow_compiler
from serving import model_card
from serving import serving_dir
from tests import fake_object_store
from tests import kfp_launcher
from tests.fake_webhook import FakeWebhook
from tests.fixtures import synthetic_busi
from tests.kubeflow_runner_test import REQUIRED_FLAGS

pytestmark = pytest.mark.e2e

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RETRAINED = [names.TRAINER, names.EVALUATOR, names.PUSHER]
# The package's pipeline root: a bucket the emulator fakes in a local folder.
BUCKET_ROOT = 'gs://busi-bucket/tfx'
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


@pytest.fixture(scope='module')
def webhook():
  with FakeWebhook() as server:
    yield server


@pytest.fixture(scope='module')
def alert_package(pipeline_root, webhook):
  """One package with an exit handler that posts to `webhook`, for every alert case."""
  root, _ = pipeline_root
  package, _ = compile_package(root, 'pipeline_alert.yaml', seed=42, alert_webhook=webhook.url)
  return package


def compile_package(root, file_name: str, seed: int, alert_webhook: str = ''):
  """A package as kubeflow_runner.py compiles it, on the fake bucket, serving into `root`."""
  args = kubeflow_runner.parse_args(REQUIRED_FLAGS + [
      '--epochs', '1', '--cpu', '1', '--gpus', '0'] +
      ['--alert-webhook', alert_webhook] * bool(alert_webhook))
  pipeline_config, platform = kubeflow_runner.build_configs(args)
  pipeline_config = dataclasses.replace(
      pipeline_config,
      pipeline_root=BUCKET_ROOT, serving_dir=str(root / 'serving'),
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
def first_package(pipeline_root):
  root, _ = pipeline_root
  return compile_package(root, 'pipeline.yaml', seed=42)


@dataclasses.dataclass
class Runs:
  first: kfp_launcher.RunResult
  first_launcher: kfp_launcher.Launcher
  pushed_first: list
  # The first package again on the same data, through KFP's cache.
  cache: kfp_launcher.ExecutionCache
  unchanged: kfp_launcher.RunResult
  served_after_unchanged: list
  changed: list
  # Run 2: the Trainer and the Pusher on KFP 2.14, the Evaluator on Vertex AI.
  second: kfp_launcher.RunResult
  second_launcher: kfp_launcher.Launcher
  vertex_evaluation: kfp_launcher.RunResult
  second_package: str
  model_serving_dir: str


@pytest.fixture(scope='module')
def runs(pipeline_root, first_package):
  root, data_root = pipeline_root
  package, model_serving_dir = first_package
  second_package, _ = compile_package(root, 'pipeline_seed_43.yaml', seed=43)
  # The data root is a run parameter: the compiled default is a gs:// path.
  parameters = {'data_root': data_root}
  first_launcher = launcher_in(root, package, kfp_launcher.KFP_2_17)
  cache = kfp_launcher.ExecutionCache()
  first = first_launcher.run('run-1', parameters, cache=cache)
  pushed_first = served_versions(model_serving_dir)
  started = time.monotonic()
  unchanged = first_launcher.run('scheduled-2', parameters, cache=cache)
  print(f'\nNo-op scheduled run: {time.monotonic() - started:.1f} s, tasks run: '
        f'{sorted(unchanged.seconds)}, served from the cache: {len(unchanged.cached)}')
  served_after_unchanged = served_versions(model_serving_dir)
  changed = kfp_launcher.changed_tasks(pipeline_spec(second_package), pipeline_spec(package))
  assert changed == RETRAINED
  # Each task of run 2 on its row: the Vertex AI row runs one task, the Evaluator
  # (the one with the most input artifacts), within the run rather than after it.
  second_parameters = {**parameters, **SECOND_RUN_PARAMETERS}
  second_launcher = launcher_in(root, second_package, kfp_launcher.KFP_2_14)
  trained = second_launcher.run('run-2', second_parameters, reuse=first,
                                execute=(names.TRAINER,))
  vertex_evaluation = launcher_in(root, second_package, kfp_launcher.VERTEX).run(
      'run-2', second_parameters, reuse=trained, execute=(names.EVALUATOR,))
  pushed = second_launcher.run('run-2', second_parameters, reuse=vertex_evaluation,
                               execute=(names.PUSHER,))
  second = dataclasses.replace(pushed, seconds={
      **trained.seconds, **vertex_evaluation.seconds, **pushed.seconds})
  return Runs(first, first_launcher, pushed_first, cache, unchanged, served_after_unchanged,
              changed, second, second_launcher, vertex_evaluation, second_package,
              model_serving_dir)


@pytest.fixture(scope='module')
def grown(pipeline_root, runs):
  """The schedule's third run: three new scans per class, warm start on for this run."""
  root, data_root = pipeline_root
  grown_root = str(root / 'data_grown')
  shutil.copytree(data_root, grown_root)
  synthetic_busi.write_dataset(grown_root, per_class=3, seed=11, first_number=51)
  served = serving_dir.served_model_path(runs.model_serving_dir)
  # The floors stay compiled at 0; a tolerance of 1 lets the tiny candidate
  # through the comparison, which the blessing still records.
  result = runs.first_launcher.run(
      'scheduled-3', {'data_root': grown_root, 'warm_start': 1, 'regression_tolerance': 1.0},
      cache=runs.cache)
  return grown_root, served, result


def launcher_in(root, package, backend):
  """A launcher on the pipeline's one fake bucket and work folder."""
  return kfp_launcher.Launcher(package, str(root / 'launcher'), _PROJECT_DIR, backend)


def container_path(root, run_id, task, uri):
  """Where the launcher put `uri` in the task's container (LocalPathForURI)."""
  return fake_object_store.local_path_for_uri(
      uri, str(root / 'launcher' / run_id / task / 'container'))


def test_open_source_first_run_pushes_a_model(runs):
  first = runs.first
  assert set(first.seconds) == set(first.outputs)
  # KFP 2.17 names each output by its key, below a per-run salt.
  assert first.outputs[names.TRAINER]['model']['uri'].startswith(BUCKET_ROOT + '/')
  assert '/run-1-salt/' in first.outputs[names.TRAINER]['model']['uri']
  assert blessing_of(first)['blessed'] == 1
  assert blessing_of(first)['baseline_served_version'] == ''
  assert len(runs.pushed_first) == 1
  pushed = first.outputs[names.PUSHER]['pushed_model']['metadata']
  assert pushed['pushed'] == 1


def test_the_launcher_moves_only_its_own_objects(pipeline_root, runs):
  """TFX writes its outputs to the bucket itself; the launcher uploads the task's log."""
  root, _ = pipeline_root
  for task in runs.first.seconds:
    assert runs.first_launcher.uploaded['run-1', task] == [kfp_launcher.EXECUTOR_LOGS]
    logs_uri = (f'{BUCKET_ROOT}/busi-ultrasound/run-1/{task}/run-1-salt/'
                f'{kfp_launcher.EXECUTOR_LOGS}')
    with open(runs.first_launcher.local_path(logs_uri)) as f:
      assert f.read() == _log(root, 'run-1', task)
  # Each input artifact was downloaded into the task's container before it ran.
  model_uri = runs.first.outputs[names.TRAINER]['model']['uri']
  downloaded = container_path(root, 'run-1', names.PUSHER, model_uri)
  in_bucket = runs.first_launcher.local_path(model_uri)
  assert sorted(os.listdir(downloaded)) == sorted(os.listdir(in_bucket))


def test_before_2_17_the_download_takes_every_object_the_key_prefixes(
    pipeline_root, runs):
  """2.14 lists `.../Trainer/model` as a plain prefix: `model_run` comes along, beside it."""
  root, _ = pipeline_root
  model_uri = runs.second.outputs[names.TRAINER]['model']['uri']
  model_run_uri = runs.second.outputs[names.TRAINER]['model_run']['uri']
  assert model_run_uri.startswith(model_uri)
  assert os.path.isdir(container_path(root, 'run-2', names.PUSHER, model_run_uri))
  # 2.17 keeps to the key and what lies below `KEY/`.
  first_run_uri = runs.first.outputs[names.TRAINER]['model_run']['uri']
  assert not os.path.exists(container_path(root, 'run-1', names.PUSHER, first_run_uri))


def test_a_local_pipeline_root_fails_every_task_in_the_launcher(pipeline_root, first_package):
  root, _ = pipeline_root
  with open(first_package[0]) as f:
    documents = list(yaml.safe_load_all(f))
  documents[0]['defaultPipelineRoot'] = str(root / 'tfx')
  package = root / 'pipeline_local_root.yaml'
  package.write_text(yaml.safe_dump_all(documents))
  with pytest.raises(ValueError, match='prepareOutputFolders.*unsupported storage scheme'):
    launcher_in(root, str(package), kfp_launcher.KFP_2_17)


def test_open_source_second_run_retrains_against_the_served_model_and_finishes(
    runs):
  first, second = runs.first, runs.second
  assert runs.changed == RETRAINED
  assert sorted(second.seconds) == sorted(RETRAINED)
  assert (second.outputs[names.TRAINER]['model']['uri']
          != first.outputs[names.TRAINER]['model']['uri'])
  blessing = blessing_of(second)
  assert blessing['baseline_served_version'] == runs.pushed_first[0]
  assert 'baseline_model_id' not in blessing
  assert blessing['blessed'] in (0, 1)
  assert names.PUSHER in second.outputs


def training_config_of(result):
  return json.loads(
      result.outputs[names.TRAINER]['model']['metadata'][names.TRAINING_CONFIG_PROPERTY])


def test_run_parameters_are_obeyed_without_recompiling(runs):
  first, second = runs.first, runs.second
  declared = pipeline_spec(runs.second_package)['root']['inputDefinitions']['parameters']
  assert declared['epochs']['defaultValue'] == 1
  assert declared['min_accuracy']['defaultValue'] == 0.0
  assert training_config_of(first)['training']['epochs'] == 1
  assert training_config_of(second)['training']['epochs'] == 2
  model_run = runs.second_launcher.local_path(second.outputs[names.TRAINER]['model_run']['uri'])
  with open(os.path.join(model_run, names.TRAINING_SUMMARY_FILE)) as f:
    assert json.load(f)['epochs_run'] == 2
  rules = json.loads(blessing_of(second)[names.BLESSING_RULES_PROPERTY])
  assert rules['min_accuracy'] == 1.0 and rules['min_malignant_recall'] == 0.0
  accuracy = evaluation_metrics.overall_metrics(
      runs.second_launcher.local_path(second.outputs[names.EVALUATOR]['evaluation']['uri']),
      features.CLASS_NAMES)[names.ACCURACY_METRIC]
  if accuracy < 1.0:  # a perfect score would pass even a floor of 1
    assert blessing_of(second)['blessed'] == 0
    assert served_versions(runs.model_serving_dir) == runs.pushed_first


def test_vertex_shaped_inputs_run_against_the_served_model(pipeline_root, runs):
  """Run 2's Evaluator ran on Vertex AI's executor input, and the Pusher on its blessing."""
  root, _ = pipeline_root
  assert sorted(runs.vertex_evaluation.seconds) == [names.EVALUATOR]
  assert blessing_of(runs.vertex_evaluation)['baseline_served_version'] == runs.pushed_first[0]
  assert (runs.second.outputs[names.EVALUATOR]
          == runs.vertex_evaluation.outputs[names.EVALUATOR])
  # Vertex AI's launcher downloads nothing into the container.
  assert not os.path.exists(root / 'launcher' / 'run-2' / names.EVALUATOR / 'container' / 'gcs')


def _log(root, run_id, task):
  return (root / 'launcher' / run_id / task / 'log.txt').read_text()


def fingerprint_of(result):
  return result.parameters[names.DATA_FINGERPRINT, data_fingerprint.FINGERPRINT_KEY]


def test_the_first_run_records_the_datas_fingerprint_on_the_card(pipeline_root, runs):
  _, data_root = pipeline_root
  assert runs.first.cached == []
  assert fingerprint_of(runs.first) == driver.folder_fingerprint(data_root)
  card = model_card.read_card(serving_dir.served_model_path(runs.model_serving_dir))
  assert card.data.fingerprint == fingerprint_of(runs.first)


def test_a_scheduled_run_on_unchanged_data_runs_only_the_fingerprint(pipeline_root, runs):
  root, _ = pipeline_root
  unchanged = runs.unchanged
  assert sorted(unchanged.seconds) == [names.DATA_FINGERPRINT]
  every_task = set(kfp_launcher.pipeline_tasks(runs.first_launcher.spec))
  assert set(unchanged.cached) == every_task - {names.DATA_FINGERPRINT}
  # The cache handed on the first run's artifacts: nothing trained or pushed.
  assert (unchanged.outputs[names.TRAINER]['model']['uri']
          == runs.first.outputs[names.TRAINER]['model']['uri'])
  assert runs.served_after_unchanged == runs.pushed_first
  lines = [line for line in _log(root, 'scheduled-2', names.DATA_FINGERPRINT).splitlines()
           if 'No new data' in line]
  assert len(lines) == 1
  assert f'version {runs.pushed_first[0]} in service was trained on this very data' in lines[0]


def test_grown_data_is_new_and_retrains_from_the_served_model_keeping_old_splits(
    pipeline_root, runs, grown):
  root, _ = pipeline_root
  grown_root, served, result = grown
  assert fingerprint_of(result) == driver.folder_fingerprint(grown_root)
  assert fingerprint_of(result) != fingerprint_of(runs.first)
  assert 'New data: not what version' in _log(root, 'scheduled-3', names.DATA_FINGERPRINT)
  assert {names.EXAMPLE_GEN, names.TRAINER, names.EVALUATOR, names.PUSHER} <= set(
      result.seconds)

  def examples(run):
    return executor_test.read_examples(
        runs.first_launcher.local_path(run.outputs[names.EXAMPLE_GEN]['examples']['uri']))
  before, after = examples(runs.first), examples(result)
  assert len(after) == len(before) + 9
  assert {name: after[name][0] for name in before} == {
      name: split for name, (split, _) in before.items()}

  version = os.path.basename(served)
  assert (f'Warm start: from served version {version} ({served}).'
          in _log(root, 'scheduled-3', names.TRAINER))
  assert blessing_of(result)['baseline_served_version'] == version
  newest = serving_dir.latest_model_path(runs.model_serving_dir)
  card = model_card.read_card(newest)
  assert os.path.basename(newest) > version
  assert card.baseline_version == version and card.started_from == served
  assert card.data.fingerprint == fingerprint_of(result)


def test_an_export_from_a_new_scanner_is_named_as_drift_in_the_task_log(
    pipeline_root, runs, grown):
  root, _ = pipeline_root
  scanner = synthetic_busi.write_manifest_dataset(
      str(root / 'data_scanner_z'), patients_per_class=4,
      classes=synthetic_busi.CLASSES, devices=('Scanner Z',))
  result = runs.first_launcher.run(
      'scheduled-4', {'data_root': scanner}, reuse=grown[2],
      execute=(names.DATA_FINGERPRINT, names.EXAMPLE_GEN, names.DRIFT_CHECK))
  assert sorted(result.seconds) == sorted(
      [names.DATA_FINGERPRINT, names.EXAMPLE_GEN, names.DRIFT_CHECK])
  with open(os.path.join(runs.first_launcher.local_path(
      result.outputs[names.DRIFT_CHECK]['drift']['uri']), drift_check.DRIFT_FILE)) as f:
    drift = drift_check.DriftResult.from_json(f.read())
  assert 'device' in {feature.feature for feature in drift.drifted}
  log = _log(root, 'scheduled-4', names.DRIFT_CHECK)
  assert f'features drifted from the data of served version {drift.served_version} ' \
      '(policy warn: run went on):' in log
  assert 'device: L-infinity' in log and 'Scanner Z' in log


def test_the_oldest_supported_backend_runs_a_task(pipeline_root, first_package):
  """KFP 2.5's driver adds the executor-logs output, typed system.Artifact, to every task.

  `--kfp-version 2.5.0` compiles the same package as the default when it has
  no exit handler (the version only refuses features), so the default one runs.
  """
  root, _ = pipeline_root
  launcher = launcher_in(root, first_package[0], kfp_launcher.KFP_2_5)
  produced = launcher.run_task(names.SCHEMA_IMPORTER, 'run-2-5')
  schema_dir = launcher.local_path(produced['schema']['uri'])
  assert os.listdir(schema_dir) == ['schema.pbtxt']
  if kfp_launcher.as_image_user():
    # Written by the task as the image's user, not as the tests' root.
    assert os.stat(os.path.join(schema_dir, 'schema.pbtxt')).st_uid == kfp_launcher.IMAGE_UID
  assert launcher.uploaded['run-2-5', names.SCHEMA_IMPORTER] == [kfp_launcher.EXECUTOR_LOGS]


def test_the_oldest_supported_backend_refuses_an_exit_handler(pipeline_root, alert_package):
  root, _ = pipeline_root
  with pytest.raises(kfp_launcher.BackendRefused, match='task final status not supported'):
    launcher_in(root, alert_package, kfp_launcher.KFP_2_5)


@pytest.mark.parametrize('backend', [kfp_launcher.KFP_2_17, kfp_launcher.VERTEX],
                         ids=lambda backend: backend.succeeded_state)
def test_the_exit_handler_posts_nothing_after_a_run_that_succeeded(
    pipeline_root, alert_package, webhook, backend):
  root, _ = pipeline_root
  posted = len(webhook.posts)
  launcher_in(root, alert_package, backend).run_exit_tasks(
      f'run-ok-{backend.succeeded_state.lower()}', failure=None)
  assert len(webhook.posts) == posted


def test_a_failed_run_is_reported_by_the_exit_handler(pipeline_root, alert_package, webhook):
  root, _ = pipeline_root
  empty_data_root = root / 'no_images'
  empty_data_root.mkdir()
  posted = len(webhook.posts)
  with pytest.raises(kfp_launcher.TaskFailed) as failed:
    launcher_in(root, alert_package, kfp_launcher.KFP_2_14).run(
        'run-failing', {'data_root': str(empty_data_root)})
  # The run parameter reached ImageExampleGen through the sub-DAG's inputs.
  assert failed.value.task == names.EXAMPLE_GEN
  assert str(empty_data_root) in failed.value.log
  [alert] = webhook.posts[posted:]
  assert alert['json']['state'] == 'FAILED'
  assert alert['json']['run'] == 'run-failing'
  assert alert['json']['pipeline'] == 'busi-ultrasound'
  # The open-source driver names the sub-DAG, with no error message.
  assert alert['json']['text'] == 'Pipeline busi-ultrasound run run-failing ended FAILED in tfx-dag'
  assert alert['json']['error'] == ''
