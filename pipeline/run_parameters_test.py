"""Run parameters: plain configured values locally, runtime parameters with them as defaults."""

import dataclasses

import pytest
from tfx.orchestration import data_types

from contracts import configs
from pipeline import run_parameters


def _config():
  return configs.PipelineConfig(
      pipeline_root='/r', serving_dir='/s',
      data=configs.DataConfig(data_root='/data'),
      training=configs.TrainingConfig(epochs=7),
      evaluation=configs.EvaluationConfig(min_accuracy=0, min_malignant_recall=0.5))


def test_fixed_values_are_the_configured_ones_typed_as_the_components_take_them():
  values = run_parameters.fixed(_config())
  assert values == run_parameters.RunParameters(
      data_root='/data', epochs=7, warm_start=0, min_accuracy=0.0, min_malignant_recall=0.5,
      regression_tolerance=0.0)
  assert isinstance(values.min_accuracy, float)


def test_runtime_parameters_are_named_after_the_fields_with_the_configured_defaults():
  parameters = run_parameters.runtime(_config())
  for name in run_parameters.NAMES:
    parameter = getattr(parameters, name)
    assert isinstance(parameter, data_types.RuntimeParameter)
    assert parameter.name == name
    assert parameter.default == getattr(run_parameters.fixed(_config()), name)
  assert parameters.epochs.ptype is int and parameters.min_accuracy.ptype is float


def test_values_of_a_run_are_parsed_and_checked_as_the_config_checks_them():
  assert run_parameters.parse_value('epochs', '5') == 5
  assert run_parameters.parse_value('min_accuracy', '0.9') == 0.9
  with pytest.raises(ValueError, match='takes int values'):
    run_parameters.parse_value('epochs', '5.5')
  assert run_parameters.parse_value('warm_start', '1') == 1
  with pytest.raises(ValueError, match='warm_start takes 1'):
    run_parameters.parse_value('warm_start', 'true')
  assert run_parameters.with_values(_config(), {'warm_start': 1}).training.warm_start is True
  with pytest.raises(ValueError, match='unknown run parameter'):
    run_parameters.parse_value('learning_rate', '1')
  config = run_parameters.with_values(_config(), {'epochs': 3, 'data_root': 'gs://b/d'})
  assert config.training.epochs == 3 and config.data.data_root == 'gs://b/d'
  assert dataclasses.replace(config, training=_config().training,
                             data=_config().data) == _config()
  with pytest.raises(configs.ConfigError, match='training.epochs'):
    run_parameters.with_values(_config(), {'epochs': 0})
