"""The runner's user-facing behaviour that needs no pipeline run."""

import os

import pytest

import local_runner
from contracts import configs
from dataset import data_root
from models import registry


def test_missing_dataset_says_where_to_get_it(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv(data_root.ENV_VAR, str(tmp_path / 'nowhere'))
  monkeypatch.setattr(data_root, 'DEFAULT_DIRS', ('data/Dataset_BUSI_with_GT',))
  assert local_runner.main([]) == 2
  message = capsys.readouterr().err
  assert data_root.DOWNLOAD_URL in message
  assert data_root.ENV_VAR in message


def test_dataset_is_found_in_the_documented_order(tmp_path, monkeypatch):
  env_dir, local_dir = tmp_path / 'env', tmp_path / 'data' / 'Dataset_BUSI_with_GT'
  local_dir.mkdir(parents=True)
  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv(data_root.ENV_VAR, str(env_dir))
  assert data_root.find_data_root(None) == os.path.abspath(local_dir)
  env_dir.mkdir()
  assert data_root.find_data_root(None) == str(env_dir)
  assert data_root.find_data_root(str(local_dir)) == str(local_dir)


@pytest.mark.parametrize('bad', ['70,30', '70,15,x', '70,0,30'])
def test_bad_split_flag_is_a_usage_error(bad, capsys):
  with pytest.raises(SystemExit) as exit_info:
    local_runner.parse_args(['--splits', bad])
  assert exit_info.value.code == 2
  assert '--splits' in capsys.readouterr().err


def test_flags_reach_the_pipeline_config(tmp_path):
  args = local_runner.parse_args([
      '--output-dir', str(tmp_path), '--model', 'seed_cnn', '--epochs', '3',
      '--splits', '60,20,20', '--min-accuracy', '0.9', '--keep-versions', '2',
      '--min-site-malignant-examples', '25', '--slice-by-device'])
  config = local_runner.build_config(args, '/data')
  assert config.model.name == 'seed_cnn' and config.model.image_size == 180
  assert config.training.epochs == 3
  assert config.data.splits == configs.SplitConfig(60, 20, 20)
  assert config.evaluation.min_accuracy == 0.9
  assert config.evaluation.min_site_malignant_examples == 25
  assert config.evaluation.slice_by_device
  assert config.keep_served_versions == 2
  assert config.serving_dir == str(tmp_path / 'serving_model')
  assert config.metadata_path == str(tmp_path / 'metadata.sqlite')


def test_model_flags_reach_the_model_config():
  config = local_runner.build_config(
      local_runner.parse_args(['--model', 'busi_net']), '/data')
  assert config.model.name == 'busi_net'
  assert config.model.image_size == registry.spec('busi_net').image_size
  assert config.training.epochs == registry.spec('busi_net').epochs


@pytest.mark.parametrize('flags, message', [
    (['--model', 'lesion_net', '--image-size', '100'],
     '--image-size must be a multiple of 32 for lesion_net, got 100'),
])
def test_model_flags_that_cannot_apply_are_usage_errors(flags, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    local_runner.parse_args(flags)
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err
