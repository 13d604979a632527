"""The networks' structure: what the seed defined, and what serving relies on."""

import dataclasses

import numpy as np
import pytest
import tf_keras as keras

from contracts import configs
from contracts import features
from models import backbones
from models import grad_cam
from models import model as model_lib
from models import registry

_SIZE = 64


def _layer_summary(layer):
  config = layer.get_config()
  keys = ('filters', 'kernel_size', 'padding', 'activation', 'units', 'rate',
          'scale', 'mode', 'factor', 'height_factor')
  return (type(layer).__name__,) + tuple(
      (k, config[k]) for k in keys if k in config)


def test_seed_cnn_is_the_notebooks_network():
  [model], serving = registry.build_model(
      configs.ModelConfig(name='seed_cnn', image_size=_SIZE), 3)
  assert serving is model
  augmentation = model.get_layer('augmentation')
  assert [_layer_summary(l) for l in augmentation.layers] == [
      ('RandomFlip', ('mode', 'horizontal')),
      ('RandomRotation', ('factor', 0.1)),
      ('RandomZoom', ('height_factor', 0.1)),
  ]
  conv = lambda f: ('Conv2D', ('filters', f), ('kernel_size', (3, 3)),
                    ('padding', 'same'), ('activation', 'relu'))
  pool = ('MaxPooling2D', ('padding', 'valid'))
  assert [_layer_summary(l) for l in model.layers[1:]] == [
      ('Sequential',),
      ('Rescaling', ('scale', 1.0)),
      conv(16), pool, conv(32), pool, conv(64), pool,
      ('Dropout', ('rate', 0.2)),
      ('Flatten',),
      ('Dense', ('activation', 'relu'), ('units', 128)),
      ('Dense', ('activation', 'softmax'), ('units', 3)),
  ]
  assert model.output_names == [model_lib.CLASS_OUTPUT]


def test_busi_net_trains_two_heads_and_serves_one():
  [training_model], serving_model = registry.build_model(
      configs.ModelConfig(name='busi_net', image_size=_SIZE, ensemble_size=1), 3)
  assert training_model.input_names == serving_model.input_names == [features.IMAGE_XF]
  assert training_model.output_names == [model_lib.CLASS_OUTPUT, model_lib.MASK_OUTPUT]
  assert serving_model.output_names == [model_lib.CLASS_OUTPUT]
  images = np.random.default_rng(0).uniform(size=(2, _SIZE, _SIZE, 1)).astype(np.float32)
  class_probs, mask_probs = training_model(images, training=False)
  assert class_probs.shape == (2, 3) and mask_probs.shape == (2, _SIZE, _SIZE, 1)
  np.testing.assert_allclose(np.sum(class_probs, axis=1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(serving_model(images, training=False), class_probs, rtol=1e-5)
  # Shared layers: the serving model carries no weight the training one lacks.
  assert {id(w) for w in serving_model.weights} <= {id(w) for w in training_model.weights}


def test_ensemble_serves_the_mean_of_its_members():
  members, ensemble = registry.build_model(
      configs.ModelConfig(name='busi_net', image_size=_SIZE, ensemble_size=3), 3)
  assert len(members) == 3
  assert ensemble.input_names == [features.IMAGE_XF]
  assert ensemble.output_names == [model_lib.CLASS_OUTPUT]
  images = np.random.default_rng(0).uniform(size=(2, _SIZE, _SIZE, 1)).astype(np.float32)
  member_probs = [member(images, training=False)[0] for member in members]
  np.testing.assert_allclose(ensemble(images, training=False),
                             np.mean(member_probs, axis=0), rtol=1e-5)
  assert not np.allclose(member_probs[0], member_probs[1])  # different initial weights
  classifiers = model_lib.ensemble_members(ensemble)
  assert len(classifiers) == 3
  assert {id(w) for w in ensemble.weights} == {
      id(w) for c in classifiers for w in c.weights}


def test_a_single_network_is_its_own_only_member():
  _, serving_model = registry.build_model(configs.ModelConfig(name='busi_net', ensemble_size=1), 3)
  assert model_lib.ensemble_members(serving_model) == [serving_model]
  with pytest.raises(ValueError, match='ensemble_size must be at least 1'):
    registry.build_model(configs.ModelConfig(name='busi_net', ensemble_size=0), 3)


def test_busi_net_stays_small():
  _, serving_model = registry.build_model(configs.ModelConfig(name='busi_net', ensemble_size=1), 3)
  assert serving_model.count_params() < 2_000_000


def test_unknown_model_names_the_choices():
  with pytest.raises(ValueError, match='Unknown model .resnet.*busi_net'):
    registry.build_model(configs.ModelConfig(name='resnet'), 3)


@pytest.mark.parametrize('name', backbones.NAMES)
def test_backbones_take_the_grey_image_and_expose_their_feature_map(name):
  [model], serving_model = registry.build_model(
      configs.ModelConfig(name=name, image_size=_SIZE), 3)
  assert serving_model is model
  assert model.input_names == [features.IMAGE_XF]
  assert model.output_names == [model_lib.CLASS_OUTPUT]
  images = np.random.default_rng(0).uniform(size=(2, _SIZE, _SIZE, 1)).astype(np.float32)
  np.testing.assert_allclose(np.sum(model(images, training=False), axis=1), 1.0, rtol=1e-5)
  # Grad-CAM reads the backbone's last feature map, not the input.
  feature_map = grad_cam.last_feature_map_layer(model)
  assert isinstance(feature_map, keras.Model)
  assert feature_map.output_shape[1:3] == (_SIZE // 32, _SIZE // 32)


def test_backbone_weights_are_read_from_the_given_file(tmp_path):
  config = configs.ModelConfig(name='mobilenet_v2', image_size=_SIZE)
  [donor], _ = registry.build_model(config, 3)
  donor_backbone = grad_cam.last_feature_map_layer(donor)
  weights_file = str(tmp_path / 'mobilenet_v2_no_top.h5')
  donor_backbone.save_weights(weights_file)

  [model], _ = registry.build_model(
      dataclasses.replace(config, backbone_weights=weights_file), 3)
  backbone = grad_cam.last_feature_map_layer(model)
  for loaded, saved in zip(backbone.weights, donor_backbone.weights):
    np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
  [fresh], _ = registry.build_model(config, 3)
  assert not np.array_equal(grad_cam.last_feature_map_layer(fresh).weights[0].numpy(),
                            donor_backbone.weights[0].numpy())


def test_a_missing_backbone_weights_file_is_a_clear_error(tmp_path):
  config = configs.ModelConfig(name='efficientnet_b0', image_size=_SIZE,
                               backbone_weights=str(tmp_path / 'absent.h5'))
  with pytest.raises(ValueError, match='absent.h5.* does not exist'):
    registry.build_model(config, 3)


def test_only_busi_net_is_served_as_an_ensemble():
  with pytest.raises(ValueError, match='only busi_net'):
    registry.build_model(configs.ModelConfig(name='mobilenet_v2', ensemble_size=2), 3)
