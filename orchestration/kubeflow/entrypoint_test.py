"""The task entrypoint: input types completed from the spec, missing GPUs refused."""

import json
import os
import subprocess
import sys

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
import pytest

from orchestration.kubeflow import entrypoint as kubeflow_entrypoint

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_EXAMPLES_TYPE = {'instanceSchema': 'title: tfx.Examples\ntype: object\n'}
INPUTS_SPEC = {'artifacts': {'examples': {'artifactType': _EXAMPLES_TYPE}},
               'parameters': {'exclude_splits': {'parameterType': 'STRING'}}}


def executor_input(artifact_type):
  return {'inputs': {'artifacts': {'examples': {'artifacts': [
      {'name': '7', 'uri': 'gs://b/examples/1', 'type': artifact_type,
       'metadata': {'split_names': '["train"]'}}]}}}}


def input_type(completed):
  return completed['inputs']['artifacts']['examples']['artifacts'][0]['type']


@pytest.mark.parametrize('sent', [{'instanceSchema': ''}, {}])
def test_untyped_inputs_of_the_open_source_backend_get_the_spec_type(sent):
  completed = kubeflow_entrypoint.complete_input_types(executor_input(sent), INPUTS_SPEC)
  assert input_type(completed) == _EXAMPLES_TYPE
  assert completed['inputs']['artifacts']['examples']['artifacts'][0]['name'] == '7'


def test_typed_inputs_of_vertex_are_left_as_sent():
  sent = {'schemaTitle': 'tfx.Examples'}
  completed = kubeflow_entrypoint.complete_input_types(executor_input(sent), INPUTS_SPEC)
  assert input_type(completed) == sent


def test_an_input_the_spec_does_not_type_is_named():
  with pytest.raises(ValueError, match="'examples'"):
    kubeflow_entrypoint.complete_input_types(executor_input({'instanceSchema': ''}),
                                             {'artifacts': {}})


def test_arguments_reach_tfx_unchanged_but_the_executor_input():
  argv = ['--executor_class_path', 'm.Executor',
          '--json_serialized_invocation_args',
          json.dumps(executor_input({'instanceSchema': ''})),
          '--json_serialized_inputs_spec_args', json.dumps(INPUTS_SPEC),
          '--runner=DirectRunner', '--require_gpus', '2']
  rewritten, gpus = kubeflow_entrypoint.rewrite_arguments(argv)
  assert gpus == 2
  assert rewritten[:3] == argv[:3] and rewritten[4:] == argv[4:7]
  assert input_type(json.loads(rewritten[3])) == _EXAMPLES_TYPE


@pytest.mark.integration
def test_a_task_that_asked_for_a_gpu_stops_when_none_is_visible():
  # This machine has no GPU: the task must stop before TFX runs anything.
  argv = ['--require_gpus', '1',
          '--executor_class_path', 'tfx.components.trainer.executor.GenericExecutor',
          '--json_serialized_invocation_args', json.dumps(executor_input({}))]
  result = subprocess.run(
      [sys.executable, '-m', kubeflow_entrypoint.__name__, *argv], cwd=_PROJECT_DIR,
      env={**os.environ, 'PYTHONPATH': _PROJECT_DIR, 'CUDA_VISIBLE_DEVICES': ''},
      capture_output=True, text=True, check=False)
  assert result.returncode == 1
  last_line = result.stderr.strip().splitlines()[-1]
  assert 'asked for 1 GPU(s) but TensorFlow sees 0' in last_line


def test_gpu_check_passes_when_enough_are_visible_or_none_was_asked_for():
  kubeflow_entrypoint.check_gpus(2, visible=2)
  kubeflow_entrypoint.check_gpus(0, visible=0)
  with pytest.raises(kubeflow_entrypoint.MissingGpuError):
    kubeflow_entrypoint.check_gpus(2, visible=1)


def test_a_final_status_struct_reaches_a_string_parameter_as_its_json():
  """The open-source driver resolves an exit handler's final status to a struct."""
  status = {'state': 'FAILED', 'pipelineTaskName': 'tfx-dag', 'error': {'code': 2}}
  spec = {'parameters': {'final_status': {'parameterType': 'STRING'},
                         'pipeline_name': {'parameterType': 'STRING'},
                         'limits': {'parameterType': 'STRUCT'}}}
  sent = {'inputs': {'parameterValues': {'final_status': status, 'pipeline_name': 'p',
                                         'limits': {'a': 1}}}}
  completed = kubeflow_entrypoint.complete_parameter_values(sent, spec)
  values = completed['inputs']['parameterValues']
  assert json.loads(values['final_status']) == status
  assert values['pipeline_name'] == 'p'
  assert values['limits'] == {'a': 1}  # declared a struct: left as sent
  assert sent['inputs']['parameterValues']['final_status'] == status  # a copy changed


def executor_input_with_outputs():
  """Outputs as KFP 2.17's driver sends them: named by key, executor-logs added."""
  return {'outputs': {'artifacts': {
      'model': {'artifacts': [{'name': 'model', 'uri': 'gs://b/t/s/model',
                               'type': {'instanceSchema': 'title: tfx.Model\ntype: object\n'}}]},
      'model_run': {'artifacts': [{'name': 'model_run', 'uri': 'gs://b/t/s/model_run',
                                   'type': {'schemaTitle': 'tfx.ModelRun'}}]},
      'executor-logs': {'artifacts': [{'name': 'executor-logs', 'uri': 'gs://b/t/s/logs',
                                       'type': {'schemaTitle': 'system.Artifact'}}]}},
      'outputFile': '/gcs/b/t/s/output_metadata.json'}}


def test_outputs_tfx_cannot_type_are_dropped_and_the_others_kept():
  sent = executor_input_with_outputs()
  completed, dropped = kubeflow_entrypoint.drop_untyped_outputs(sent)
  assert dropped == ['executor-logs']
  assert set(completed['outputs']['artifacts']) == {'model', 'model_run'}
  assert completed['outputs']['outputFile'] == sent['outputs']['outputFile']
  assert 'executor-logs' in sent['outputs']['artifacts']  # a copy changed


@pytest.mark.parametrize('artifact_type, typed', [
    ({'schemaTitle': 'system.Artifact'}, False),
    ({'schemaTitle': 'system.Model'}, False),
    ({}, False),
    ({'schemaTitle': 'tfx.Examples'}, True),
    ({'instanceSchema': 'title: tfx.ModelBlessing\ntype: object\n'}, True),
])
def test_tfx_can_type_is_tfx_own_lookup(artifact_type, typed):
  assert kubeflow_entrypoint.tfx_can_type(artifact_type) is typed


def test_tfx_parses_the_rewritten_input_of_the_newest_backend():
  """KFP 2.17 may send fields the locked pipeline-spec protos lack (customPath)."""
  sent = executor_input_with_outputs()
  sent['outputs']['artifacts']['model']['artifacts'][0]['customPath'] = '/models/x'
  rewritten, _ = kubeflow_entrypoint.rewrite_arguments(
      ['--json_serialized_invocation_args', json.dumps(sent)])
  parsed = pipeline_spec_pb2.ExecutorInput()
  # TFX 1.16's entrypoint parses it so (kubeflow_v2_run_executor._run_executor).
  json_format.Parse(rewritten[1], parsed, ignore_unknown_fields=True)
  assert set(parsed.outputs.artifacts) == {'model', 'model_run'}
