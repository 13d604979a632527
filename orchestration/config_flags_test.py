"""The shared pipeline flags: site syntax parsed at the edge, refused values named by flag."""

import argparse
import json

import pytest

from contracts import configs
from orchestration import config_flags


def test_a_refused_value_names_the_flag():
  built, message = config_flags.config_or_message(
      'runner.py', lambda: configs.TrainingConfig(epochs=0))
  assert built is None
  assert message == 'runner.py: error: --epochs must be at least 1 (a whole number), got 0'


def test_warm_start_flags_set_the_training_config():
  parser = argparse.ArgumentParser()
  config_flags.add_pipeline_flags(parser)
  assert config_flags.training_config(parser.parse_args([])) == configs.TrainingConfig()
  args = parser.parse_args(['--warm-start', '--warm-start-epochs', '4'])
  training = config_flags.training_config(args)
  assert (training.warm_start, training.warm_start_epochs) == (True, 4)
  _, message = config_flags.config_or_message(
      'runner.py', lambda: config_flags.training_config(
          parser.parse_args(['--warm-start-epochs', '0'])))
  assert message == ('runner.py: error: --warm-start-epochs must be at least 1 '
                     '(a whole number), got 0')


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


def test_named_and_bare_roots_become_sites_in_order():
  assert config_flags.parse_site_specs(['busi=/a', '/data/b', 'bus_bra=/c']) == [
      ('busi', '/a'), ('default', '/data/b'), ('bus_bra', '/c')]
  # '=' inside a folder name is a bare path, not a site name.
  assert config_flags.parse_site_spec('/data/run=3') == ('default', '/data/run=3')


@pytest.mark.parametrize('specs, message', [
    (['Busi=/a'], "--data-root 'Busi=/a': site names are lower-case letters, digits and _"),
    (['bus-bra=/a'], "--data-root 'bus-bra=/a': site names are lower-case"),
    (['busi='], "--data-root 'busi=': site 'busi' needs a folder after ="),
    ([''], '--data-root needs a folder, got an empty value'),
    (['busi=/a', 'busi=/b'], "--data-root: site 'busi' given twice ('busi=/a' and 'busi=/b')"),
    (['/a', '/b'], "--data-root: site 'default' given twice ('/a' and '/b'); a bare folder "
                   "is the site 'default', name the others NAME=PATH"),
])
def test_bad_site_specs_are_one_line(specs, message):
  with pytest.raises(config_flags.SiteSpecError) as raised:
    config_flags.parse_site_specs(specs)
  assert str(raised.value).startswith(message)


def test_columns_come_from_a_preset_or_a_json_file(tmp_path):
  path = tmp_path / 'columns.json'
  path.write_text(json.dumps({'manifest': 'export.csv', 'label': 'Diagnosis'}))
  built = config_flags.build_sites(['a=/a', 'b=/b', 'c=/c'], ['b=bus_bra', f'c={path}'])
  assert [s.columns for s in built] == [
      configs.ManifestColumns(), configs.MANIFEST_PRESETS['bus_bra'],
      configs.ManifestColumns(manifest='export.csv', label='Diagnosis')]


@pytest.mark.parametrize('columns, message', [
    (['x=bus_bra'], "--manifest-columns 'x=bus_bra': no --data-root names site 'x' (sites: a)"),
    (['a'], '--manifest-columns takes NAME=PRESET or NAME=FILE.json (presets: default, bus_bra)'),
    (['a=busbra'], "--manifest-columns 'a=busbra': 'busbra' is neither a preset"),
    (['a=/no/such.json'], "--manifest-columns 'a=/no/such.json': cannot read /no/such.json"),
    (['a=bus_bra', 'a=default'], "--manifest-columns: site 'a' given columns twice"),
])
def test_bad_columns_specs_are_one_line(columns, message):
  with pytest.raises(config_flags.SiteSpecError) as raised:
    config_flags.build_sites(['a=/a'], columns)
  assert str(raised.value).startswith(message)


def test_a_columns_file_with_an_unknown_field_names_it(tmp_path):
  path = tmp_path / 'columns.json'
  path.write_text(json.dumps({'labels': 'Diagnosis'}))
  with pytest.raises(config_flags.SiteSpecError, match='has no field labels'):
    config_flags.build_sites(['a=/a'], [f'a={path}'])


def test_the_target_sensitivity_flag_sets_the_trainer_field_and_names_itself():
  parser = argparse.ArgumentParser()
  config_flags.add_pipeline_flags(parser)
  args = parser.parse_args(['--target-sensitivity', '0.95'])
  assert config_flags.training_config(args).target_malignant_sensitivity == 0.95
  assert config_flags.training_config(parser.parse_args([])) == configs.TrainingConfig(
      epochs=config_flags.registry.spec(configs.ModelConfig().name).epochs)
  _, message = config_flags.config_or_message(
      'runner.py', lambda: config_flags.training_config(
          parser.parse_args(['--target-sensitivity', '1.5'])))
  assert message == ('runner.py: error: --target-sensitivity must be above 0 and at '
                     'most 1, got 1.5')
