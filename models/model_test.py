"""The networks' structure: what the seed defined, and what serving relies on."""

import numpy as np
import pytest

from contracts import configs
from contracts import features
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
  model, serving = registry.build_model(
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
  training_model, serving_model = registry.build_model(
      configs.ModelConfig(name='busi_net', image_size=_SIZE), 3)
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


def test_busi_net_stays_small():
  _, serving_model = registry.build_model(configs.ModelConfig(name='busi_net'), 3)
  assert serving_model.count_params() < 2_000_000


def test_unknown_model_names_the_choices():
  with pytest.raises(ValueError, match='Unknown model .resnet.*busi_net'):
    registry.build_model(configs.ModelConfig(name='resnet'), 3)
