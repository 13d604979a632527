"""`class_scores`: what the exported signatures return for transformed images."""

import numpy as np
import tensorflow as tf
import tf_keras as keras

from models import inference


def _left_half_detector() -> keras.Model:
  """Class 0 when the image's left half is bright, else class 1."""
  inputs = keras.Input((4, 4, 1))
  left = keras.layers.Lambda(lambda x: tf.reduce_mean(x[:, :, :2], axis=[1, 2, 3]))(inputs)
  logits = keras.layers.Lambda(lambda m: tf.stack([10.0 * m, 10.0 * (1.0 - m)], axis=1))(left)
  return keras.Model(inputs, keras.layers.Softmax()(logits))


def test_temperature_softens_the_scores_without_changing_the_decision():
  network = _left_half_detector()
  image = np.zeros((1, 4, 4, 1), np.float32)
  image[:, :, :2] = 0.8
  raw = inference.class_scores(network, image, 1.0).numpy()
  hot = inference.class_scores(network, image, 4.0).numpy()
  assert raw[0].argmax() == hot[0].argmax() == 0
  assert hot[0, 0] < raw[0, 0]
  np.testing.assert_allclose(hot.sum(), 1.0, rtol=1e-6)
