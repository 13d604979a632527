"""A value the config refuses becomes one line naming the flag that set it."""

from contracts import configs
from orchestration import config_flags


def test_a_refused_value_names_the_flag():
  built, message = config_flags.config_or_message(
      'runner.py', lambda: configs.TrainingConfig(epochs=0))
  assert built is None
  assert message == 'runner.py: error: --epochs must be at least 1 (a whole number), got 0'


def test_a_field_no_flag_sets_is_named_as_the_field():
  _, message = config_flags.config_or_message(
      'runner.py', lambda: configs.ModelConfig(dropout=1.5))
  assert message.startswith('runner.py: error: model.dropout must be from 0 to below 1')


def test_a_valid_config_is_returned_as_built():
  assert config_flags.config_or_message('runner.py', configs.TrainingConfig) == (
      configs.TrainingConfig(), None)


def test_a_refused_site_names_the_data_root_flag():
  site = configs.Site('busi', '/data')
  _, message = config_flags.config_or_message(
      'runner.py', lambda: configs.DataConfig(sites=(site, site)))
  assert message == 'runner.py: error: --data-root must have distinct names, got busi more than once'
