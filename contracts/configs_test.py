"""Every config value is checked when the config is built, before any work."""

import dataclasses

import pytest

from contracts import configs


@pytest.mark.parametrize('build, field, allowed', [
    (lambda: configs.TrainingConfig(epochs=0), 'training.epochs', 'at least 1'),
    (lambda: configs.TrainingConfig(batch_size=0), 'training.batch_size', 'at least 1'),
    (lambda: configs.TrainingConfig(learning_rate=0.0), 'training.learning_rate', 'above 0'),
    (lambda: configs.TrainingConfig(early_stopping_patience=-1),
     'training.early_stopping_patience', 'at least 0'),
    (lambda: configs.ModelConfig(image_size=0), 'model.image_size', 'at least 32'),
    (lambda: configs.ModelConfig(image_size=-5), 'model.image_size', 'at least 32'),
    (lambda: configs.ModelConfig(image_size=4096), 'model.image_size', 'at most 1024'),
    (lambda: configs.ModelConfig(dropout=1.0), 'model.dropout', 'below 1'),
    (lambda: configs.EvaluationConfig(min_accuracy=2), 'evaluation.min_accuracy', '0 to 1'),
    (lambda: configs.EvaluationConfig(min_malignant_recall=-0.1),
     'evaluation.min_malignant_recall', '0 to 1'),
    (lambda: configs.EvaluationConfig(regression_tolerance=-1),
     'evaluation.regression_tolerance', '0 to 1'),
    (lambda: configs.EvaluationConfig(min_site_malignant_examples=0),
     'evaluation.min_site_malignant_examples', 'at least 1'),
    (lambda: configs.EvaluationConfig(slice_by_device='yes'),
     'evaluation.slice_by_device', 'true or false'),
    (lambda: configs.SplitConfig(70, 0, 30), 'data.splits.eval', 'at least 1'),
    (lambda: configs.DataConfig(max_quarantined_fraction=1.5),
     'data.max_quarantined_fraction', '0 to 1'),
    (lambda: configs.DataConfig(label_conflicts='ignore'), 'data.label_conflicts',
     'drop, keep, fail'),
    (lambda: configs.DataConfig(near_duplicate_max_bits=65),
     'data.near_duplicate_max_bits', 'at most 64'),
    (lambda: configs.DataConfig(class_names=('benign', 'benign')), 'data.class_names',
     'distinct'),
    (lambda: configs.PipelineConfig('root', 'serving', keep_served_versions=0),
     'keep_served_versions', 'at least 1'),
])
def test_an_invalid_value_names_its_field_and_what_is_allowed(build, field, allowed):
  with pytest.raises(configs.ConfigError) as error:
    build()
  assert error.value.field == field
  assert allowed in error.value.message
  assert str(error.value).startswith(f'{field} ')


def test_replacing_a_value_is_checked_too():
  with pytest.raises(configs.ConfigError, match='training.epochs'):
    dataclasses.replace(configs.TrainingConfig(), epochs=-3)


def test_the_defaults_are_valid():
  config = configs.PipelineConfig(pipeline_root='', serving_dir='')
  assert config.training.epochs >= 1 and config.model.image_size >= configs.MIN_IMAGE_SIZE


def test_the_trainer_gets_its_epochs_and_warm_start_only_from_its_own_parameters():
  compiled = configs.PipelineConfig(pipeline_root='', serving_dir='').trainer_custom_config()
  assert not set(configs.TRAINER_PARAMETERS) & set(compiled['training'])
  resolved = configs.with_trainer_parameters(compiled, 7, True)
  assert (configs.training_config_from(resolved)
          == configs.TrainingConfig(epochs=7, warm_start=True))
  with pytest.raises(ValueError, match='epochs, warm_start of its own'):
    configs.with_trainer_parameters(resolved, 8, False)
  with pytest.raises(configs.ConfigError, match='training.epochs'):
    configs.with_trainer_parameters(compiled, 0, False)
