"""`train`, the code both the Trainer and the quality benchmark run."""

import numpy as np
import pytest
import tensorflow as tf

from bench import synthetic_busi
from contracts import configs
from contracts import features
from models import registry
from models import trainer
from models import training

_SIZE = 32


def _examples(per_class: int, seed: int) -> tf.data.Dataset:
  rng = np.random.default_rng(seed)
  images, masks, labels = [], [], []
  for index, label in enumerate(features.CLASS_NAMES):
    for _ in range(per_class):
      image, mask = synthetic_busi.make_image(label, rng, _SIZE, _SIZE)
      images.append(image[..., np.newaxis] / 255.0)
      masks.append(mask[..., np.newaxis])
      labels.append(index)
  return tf.data.Dataset.from_tensor_slices({
      features.IMAGE_XF: np.array(images, np.float32),
      features.MASK_XF: np.array(masks, np.float32),
      features.LABEL_XF: np.array(labels, np.int64)})


def test_class_weights_balance_the_classes():
  labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
  weights = training.class_weights(labels, 3)
  per_example = weights[labels]
  assert np.isclose(per_example.mean(), 1.0)
  # Each class carries the same total weight.
  np.testing.assert_allclose(np.bincount(labels, per_example), [10 / 3] * 3)


def test_class_weights_of_an_absent_class_are_zero():
  assert training.class_weights(np.array([0, 0, 1]), 3)[2] == 0.0


def test_augmentation_moves_image_and_mask_together():
  image = np.full((_SIZE, _SIZE, 1), 0.2, np.float32)
  mask = np.zeros((_SIZE, _SIZE, 1), np.float32)
  image[4:14, 6:20], mask[4:14, 6:20] = 0.8, 1.0
  moved = 0
  for seed in range(8):
    out_image, out_mask = training._augment(
        tf.constant(image), tf.constant(mask), tf.constant([seed, 1], tf.int64))
    out_image, out_mask = out_image.numpy(), out_mask.numpy()
    assert out_image.shape == out_mask.shape == (_SIZE, _SIZE, 1)
    assert set(np.unique(out_mask)) <= {0.0, 1.0}
    # The lesion stays the brightest region, wherever the geometry moved it.
    threshold = (out_image[out_mask == 1].min() + out_image[out_mask == 0].max()) / 2
    agreement = ((out_image > threshold) == (out_mask == 1)).mean()
    assert agreement > 0.97, f'seed {seed}: image and mask disagree on {1 - agreement:.0%}'
    moved += not np.array_equal(out_mask, mask)
  assert moved >= 4


@pytest.mark.parametrize('model_name', registry.MODEL_CHOICES)
def test_one_epoch_returns_a_serving_model(model_name):
  model_config = configs.ModelConfig(name=model_name, image_size=_SIZE)
  result = training.train(
      model_config, configs.TrainingConfig(epochs=1, batch_size=8, seed=5),
      features.CLASS_NAMES, _examples(4, seed=0), _examples(2, seed=1))
  members = model_config.ensemble_size
  assert [(m.epochs_run, m.best_epoch, m.seed) for m in result.members] == [
      (1, 0, 5 + k) for k in range(members)]
  assert result.epochs_run == members
  images = np.stack([x[features.IMAGE_XF] for x in _examples(1, seed=2).as_numpy_iterator()])
  probs = result.scores(images)
  assert probs.shape == (3, 3)
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
  if not registry.spec(model_name).calibrated:  # the notebook's network, served as it was
    assert (result.temperature, result.flip_average) == (1.0, False)
  else:
    assert result.temperature > 0
    assert result.flip_average == model_config.test_time_flip


def test_empty_train_split_is_a_clear_error():
  empty = _examples(1, seed=0).take(0)
  with pytest.raises(ValueError, match='train split holds no examples'):
    training.train(configs.ModelConfig(image_size=_SIZE), configs.TrainingConfig(),
                   features.CLASS_NAMES, empty, _examples(1, seed=1))


def test_empty_eval_split_is_a_clear_error():
  with pytest.raises(ValueError, match='eval split holds no examples'):
    training.train(configs.ModelConfig(image_size=_SIZE), configs.TrainingConfig(),
                   features.CLASS_NAMES, _examples(1, seed=0), _examples(1, seed=1).take(0))


def test_train_places_the_variables_with_the_given_strategy():
  strategy = tf.distribute.MirroredStrategy(['/cpu:0'])
  result = training.train(
      configs.ModelConfig(name='seed_cnn', image_size=_SIZE),
      configs.TrainingConfig(epochs=1, batch_size=8),
      features.CLASS_NAMES, _examples(2, seed=0), _examples(1, seed=1),
      strategy=strategy)
  assert all(strategy.extended.variable_created_in_scope(w)
             for w in result.serving_model.weights)


def test_trainer_without_a_gpu_uses_the_default_strategy():
  if tf.config.list_physical_devices('GPU'):
    pytest.skip('a GPU is visible: the Trainer mirrors across it')
  assert trainer.distribution_strategy() is tf.distribute.get_strategy()
