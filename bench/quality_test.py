"""`make bench-quality` end to end on a small generated folder."""

import json

import pytest

from bench import cross_site_test
from bench import quality
from bench import synthetic_busi
from contracts import configs


@pytest.fixture(scope='module')
def data_config(tmp_path_factory):
  root = synthetic_busi.write_dataset(str(tmp_path_factory.mktemp('busi')), per_class=10)
  return configs.DataConfig(data_root=root)


def test_quality_bench_scores_the_split_it_is_asked_to(data_config, tmp_path):
  output = tmp_path / 'quality.json'
  other_site = cross_site_test.write_manifest_site(
      str(tmp_path / 'bus_bra'), ['benign', 'malignant'] * 3)
  assert quality.main(['--data-root', data_config.data_root, '--models', 'seed_cnn',
                       '--epochs', '1', '--score-split', 'eval',
                       '--cross-site-root', other_site, '--output', str(output)]) == 0
  results = json.loads(output.read_text())
  assert results['evaluation'] == 'pipeline split, scored on eval'
  [run] = results['runs']['seed_cnn']
  assert run['scored_images'] == results['split_sizes'][0]['eval']
  assert 0.0 <= run['accuracy'] <= 1.0 and run['epochs_run'] == 1
  assert 0.0 <= run['pointing_game'] <= 1.0 and run['latency_ms'] > 0
  assert run['cross_site_images'] == 6
  assert 0.0 <= run['cross_site_benign_vs_malignant_auc'] <= 1.0
  assert '| seed_cnn |' in results['table'] and 'BUS-BRA B/M AUC' in results['table']


def test_a_cross_site_root_without_its_manifest_is_a_usage_error(data_config, tmp_path,
                                                                  capsys):
  with pytest.raises(SystemExit) as exit_info:
    quality.main(['--data-root', data_config.data_root, '--cross-site-root', str(tmp_path)])
  assert exit_info.value.code == 2
  assert 'holds no bus_data.csv' in capsys.readouterr().err


def test_missing_data_root_names_the_flag(tmp_path):
  with pytest.raises(SystemExit, match='--data-root .* is not a folder'):
    quality.main(['--data-root', str(tmp_path / 'nowhere')])


def test_a_missing_backbone_weights_file_is_a_usage_error(data_config, tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_info:
    quality.main(['--data-root', data_config.data_root, '--models', 'mobilenet_v2',
                  '--backbone-weights', str(tmp_path / 'absent.h5')])
  assert exit_info.value.code == 2
  assert 'absent.h5' in capsys.readouterr().err
