"""`make bench-quality` end to end on a small generated folder."""

import json

import numpy as np
import pytest

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf
import tf_keras as keras

from bench import busi_arrays
from bench import cross_site_test
from bench import quality
from contracts import configs
from models import lesion_net
from tests.fixtures import synthetic_busi


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
  assert np.isnan(run['lesion_box_hits'])    # seed_cnn has no lesion box
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


def _fixed_box_model(box):
  """A classifier whose lesion box is `box` (y0, x0, y1, x1) for every image."""
  inputs = keras.Input((8, 8, 1))
  box_layer = keras.layers.Lambda(
      lambda x: tf.tile(tf.constant([box], tf.float32), [tf.shape(x)[0], 1]),
      name=lesion_net.LESION_BOX)(inputs)
  return keras.Model(inputs, keras.layers.Dense(3, activation='softmax')(box_layer))


def test_lesion_box_hits_counts_boxes_centred_on_the_lesion():
  masks = np.zeros((3, 8, 8, 1), np.float32)
  masks[0, :4, :4] = 1    # top left: the box's centre (2, 2) is on it
  masks[1, 4:, 4:] = 1    # bottom right: missed
  images = np.zeros_like(masks)    # masks[2] is a normal scan: not counted
  scored = busi_arrays.TransformedImages(['a', 'b', 'c'], ['a', 'b', 'c'], images, masks,
                                         np.zeros(3, np.int64))
  assert quality.lesion_box_hits(_fixed_box_model([0.0, 0.0, 0.5, 0.5]), scored) == 0.5
  inputs = keras.Input((8, 8, 1))
  no_box = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
  assert np.isnan(quality.lesion_box_hits(no_box, scored))
