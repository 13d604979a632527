"""Grad-CAM must point at the evidence: a tiny CNN learns a box, the map finds it."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from contracts import configs
from models import grad_cam
from models import lesion_net
from models import registry

_SIZE = 32
_BOX = 8


def _scan(rng: np.random.Generator, label: int):
  """Speckle, plus a bright box anywhere for class 1: (image, box mask).

  The box is the only evidence for class 1, so its heatmap has one right place.
  """
  image = rng.normal(0.5, 0.1, (_SIZE, _SIZE))
  top, left = rng.integers(0, _SIZE - _BOX, size=2)
  mask = np.zeros((_SIZE, _SIZE), dtype=bool)
  mask[top:top + _BOX, left:left + _BOX] = True
  if label:
    image[mask] = 0.95
  return np.clip(image, 0, 1)[..., None].astype(np.float32), mask


def _scans(count: int, seed: int):
  rng = np.random.default_rng(seed)
  labels = np.arange(count) % 2
  images, masks = zip(*(_scan(rng, label) for label in labels))
  return np.stack(images), np.stack(masks), labels


@pytest.fixture(scope='module')
def box_model():
  keras.utils.set_random_seed(0)
  inputs = keras.Input((_SIZE, _SIZE, 1))
  x = keras.layers.Conv2D(8, 3, padding='same', activation='relu')(inputs)
  x = keras.layers.Conv2D(16, 3, padding='same', activation='relu')(x)
  x = keras.layers.MaxPooling2D()(x)
  x = keras.layers.Conv2D(16, 3, padding='same', activation='relu', name='last_conv')(x)
  x = keras.layers.GlobalMaxPooling2D()(x)
  outputs = keras.layers.Dense(2, activation='softmax')(x)
  model = keras.Model(inputs, outputs)
  model.compile(keras.optimizers.Adam(0.01), 'sparse_categorical_crossentropy',
                metrics=['accuracy'])
  images, _, labels = _scans(256, seed=1)
  model.fit(images, labels, epochs=8, batch_size=32, verbose=0)
  return model


def test_heatmap_peaks_inside_the_box_with_the_class_evidence(box_model):
  images, masks, labels = _scans(24, seed=2)
  assert box_model.evaluate(images, labels, verbose=0)[1] == 1.0
  images, masks, labels = images[labels == 1], masks[labels == 1], labels[labels == 1]
  heatmaps = grad_cam.grad_cam(box_model, images, labels)
  assert heatmaps.shape == (12, _SIZE, _SIZE)
  assert heatmaps.min() >= 0.0 and np.isclose(heatmaps.max(), 1.0)
  hits = [grad_cam.peak_inside(h, m) for h, m in zip(heatmaps, masks)]
  assert all(hits), f'peak outside the box for images {np.flatnonzero(~np.array(hits))}'


def test_the_feature_map_is_the_last_spatial_layer(box_model):
  assert grad_cam.last_feature_map_layer(box_model).name == 'last_conv'
  _, busi_net = registry.build_model(
      configs.ModelConfig(name='busi_net', image_size=32), 3)
  pooling = next(layer for layer in busi_net.layers
                 if isinstance(layer, keras.layers.GlobalAveragePooling2D))
  assert grad_cam.last_feature_map_layer(busi_net).output is pooling.input


def _write_export(model: keras.Model, export_dir) -> None:
  """A SavedModel whose variables are `model`'s, saved as models/signatures.py does."""
  tf.saved_model.save(tf.Module(), str(export_dir))
  tf.train.Checkpoint(model=model).write(str(export_dir / 'variables' / 'variables'))


def test_an_export_of_another_network_is_refused(tmp_path):
  config = configs.ModelConfig(name='seed_cnn', image_size=32)
  _, seed_cnn = registry.build_model(config, 3)
  _write_export(seed_cnn, tmp_path)
  assert grad_cam.load_serving_model(str(tmp_path), config, 3).count_params() == \
      seed_cnn.count_params()
  with pytest.raises(ValueError, match='does not fit the busi_net'):
    grad_cam.load_serving_model(str(tmp_path), configs.ModelConfig(name='busi_net', image_size=32), 3)


def test_peak_inside_reads_the_argmax():
  heatmap = np.zeros((4, 4))
  heatmap[1, 2] = 1.0
  mask = np.zeros((4, 4), dtype=bool)
  assert not grad_cam.peak_inside(heatmap, mask)
  mask[1, 2] = True
  assert grad_cam.peak_inside(heatmap, mask)
  assert not grad_cam.peak_inside(np.zeros((4, 4)), np.ones((4, 4), dtype=bool))


def test_lesion_nets_heatmap_explains_the_whole_image_not_the_crop():
  size = 64
  _, serving_model = registry.build_model(
      configs.ModelConfig(name='lesion_net', image_size=size), 3)
  layer = grad_cam.explained_layer(serving_model, 'lesion_net')
  assert layer.name == lesion_net.CONTEXT_FEATURE_MAP
  # A bright square off centre: the predicted box is not the whole image, so
  # the crop pass's maps are in other coordinates than the image's.
  images = np.full((2, size, size, 1), 0.2, np.float32)
  images[:, 8:24, 36:52] = 0.9
  backbone = next(l for l in serving_model.layers
                  if l.name == 'efficientnet_lite0_features')
  probe = keras.Model(serving_model.inputs,
                      [layer.get_output_at(-1), backbone.get_output_at(-1)[2]])
  explained, crop_map = probe(images, training=False)
  whole_image = backbone(np.repeat(images, 3, axis=-1) * 255.0, training=False)[2]
  np.testing.assert_allclose(explained, whole_image, rtol=1e-4, atol=1e-4)
  assert not np.allclose(crop_map, whole_image, atol=1e-2)
  heatmaps = grad_cam.grad_cam(serving_model, images, np.array([0, 1]), layer)
  assert heatmaps.shape == (2, size, size)
  assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0


def test_the_other_families_explain_their_deepest_spatial_layer():
  _, busi_net = registry.build_model(configs.ModelConfig(name='busi_net', image_size=32), 3)
  assert grad_cam.explained_layer(busi_net, 'busi_net') is None
