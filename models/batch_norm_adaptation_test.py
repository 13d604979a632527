"""Batch-norm adaptation moves the statistics to the new scans and nothing else."""

import numpy as np
import pytest
import tf_keras as keras

from models import batch_norm_adaptation


def _network():
  inputs = keras.Input((4,))
  norm = keras.layers.BatchNormalization(momentum=0.99, name='norm')
  outputs = keras.layers.Dense(2, name='head')(keras.layers.Dropout(0.5)(norm(inputs)))
  return keras.Model(inputs, outputs), norm


@pytest.mark.parametrize('scans', [256, 20])
def test_the_statistics_become_the_new_sites_and_the_weights_stay(scans):
  model, norm = _network()
  norm.trainable = False
  head = model.get_layer('head').get_weights()
  new_site = np.random.default_rng(0).normal(5.0, 2.0, (scans, 4)).astype(np.float32)
  assert batch_norm_adaptation.adapt(model, new_site) == 1
  np.testing.assert_allclose(norm.moving_mean.numpy(), new_site.mean(axis=0), atol=0.3)
  np.testing.assert_allclose(norm.moving_variance.numpy(), new_site.var(axis=0), rtol=0.25)
  assert (norm.trainable, norm.momentum) == (False, 0.99)
  for kept, now in zip(head, model.get_layer('head').get_weights()):
    np.testing.assert_array_equal(kept, now)


def test_a_network_without_batch_norm_is_left_as_it_is():
  inputs = keras.Input((4,))
  model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
  assert batch_norm_adaptation.adapt(model, np.zeros((3, 4), np.float32)) == 0


def test_no_scans_is_a_clear_error():
  model, _ = _network()
  with pytest.raises(ValueError, match='at least one scan'):
    batch_norm_adaptation.adapt(model, np.zeros((0, 4), np.float32))
