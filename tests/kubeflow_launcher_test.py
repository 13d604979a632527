"""The compiled Kubeflow package, executed task by task as KFP's launcher runs it.

One package is compiled for a local pipeline root (floors of 0, so tiny data
can be blessed; one epoch, 32-pixel images) and run by tests/kfp_launcher.py:
twice with the open-source backend's input artifacts (the first run pushes a
model, the second has it as the served baseline), then with Vertex AI's. The
Vertex-shaped run executes the Evaluator and the Pusher, the tasks that a
served baseline changes, and reuses the second run's other outputs as KFP
does for cache hits: each task costs TensorFlow's and TFX's start-up (10 to
20 s), and every other task already parsed its inputs in the two full runs.
"""

import dataclasses
import os

import pytest

import kubeflow_runner
from bench import synthetic_busi
from contracts import configs
from orchestration.kubeflow import compiler as kubeflow_compiler
from orchestration.kubeflow import configs as kubeflow_configs
from pipeline import pipeline as pipeline_lib
from tests import kfp_launcher
from tests.kubeflow_runner_test import REQUIRED_FLAGS

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def compiled(tmp_path_factory):
  root = tmp_path_factory.mktemp('kfp_launcher')
  data_root = synthetic_busi.write_dataset(str(root / 'data'), per_class=10)
  args = kubeflow_runner.parse_args(REQUIRED_FLAGS + [
      '--epochs', '1', '--cpu', '1', '--gpus', '0',
      '--beam-arg=--direct_running_mode=in_memory'])
  pipeline_config, platform = kubeflow_runner.build_configs(args)
  pipeline_config = dataclasses.replace(
      pipeline_config,
      pipeline_root=str(root / 'tfx'), serving_dir=str(root / 'serving'),
      schema_file=os.path.join(configs.SCHEMA_DIR, 'schema.pbtxt'),
      model=dataclasses.replace(pipeline_config.model, image_size=32),
      evaluation=dataclasses.replace(pipeline_config.evaluation, min_accuracy=0.0,
                                     min_malignant_recall=0.0))
  package = str(root / 'pipeline.yaml')
  kubeflow_compiler.compile_package(pipeline_lib.create_pipeline(pipeline_config),
                                    platform, package)
  return package, root, pipeline_config.model_serving_dir, data_root


def blessing_of(result):
  return result.outputs['ServedBaselineEvaluator']['blessing']['metadata']


def served_versions(model_serving_dir):
  return sorted(name for name in os.listdir(model_serving_dir) if name.isdigit())


@pytest.fixture(scope='module')
def open_source_runs(compiled):
  package, root, model_serving_dir, data_root = compiled
  launcher = kfp_launcher.Launcher(package, str(root / 'launcher'), _PROJECT_DIR,
                                   kfp_launcher.OPEN_SOURCE)
  # The data root is a run parameter: the compiled default is a gs:// path.
  parameters = {kubeflow_configs.DATA_ROOT_PARAMETER: data_root}
  first = launcher.run('run-1', parameters)
  pushed_first = served_versions(model_serving_dir)
  second = launcher.run('run-2', parameters)
  return first, pushed_first, second


def test_open_source_first_run_pushes_a_model(open_source_runs):
  first, pushed_first, _ = open_source_runs
  assert blessing_of(first)['blessed'] == 1
  assert blessing_of(first)['baseline_served_version'] == ''
  assert len(pushed_first) == 1
  pushed = first.outputs['Pusher']['pushed_model']['metadata']
  assert pushed['pushed'] == 1


def test_open_source_second_run_compares_with_the_served_model_and_finishes(
    open_source_runs):
  _, pushed_first, second = open_source_runs
  blessing = blessing_of(second)
  assert blessing['baseline_served_version'] == pushed_first[0]
  assert 'baseline_model_id' not in blessing
  assert blessing['blessed'] in (0, 1)
  assert 'Pusher' in second.outputs


def test_vertex_shaped_inputs_run_against_the_served_model(compiled, open_source_runs):
  package, root, model_serving_dir, _ = compiled
  served = served_versions(model_serving_dir)
  launcher = kfp_launcher.Launcher(package, str(root / 'launcher'), _PROJECT_DIR,
                                   kfp_launcher.VERTEX)
  result = launcher.run('run-vertex', reuse=open_source_runs[2],
                        execute=('ServedBaselineEvaluator', 'Pusher'))
  assert blessing_of(result)['baseline_served_version'] == served[-1]
  assert 'Pusher' in result.outputs
