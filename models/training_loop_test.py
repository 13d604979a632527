"""`train`, the code both the Trainer and the quality benchmark run."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from contracts import configs
from contracts import features
from contracts import serving
from models import model as model_lib
from models import preprocessing
from models import registry
from models import run_fn
from models import signatures
from models import training_loop
from tests.fixtures import exported_model
from tests.fixtures import synthetic_busi

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


def test_eval_arrays_carry_the_site_where_the_examples_do():
  with_site = _examples(1, 0).map(lambda e: {**e, features.SITE_XF: tf.constant(b'busi')})
  _, labels, sites = training_loop._arrays(with_site)
  assert sites.tolist() == ['busi'] * 3 and labels.tolist() == [0, 1, 2]
  assert training_loop._arrays(_examples(1, 0))[2].tolist() == [''] * 3


def test_class_weights_balance_the_classes():
  labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
  weights = training_loop.class_weights(labels, 3)
  per_example = weights[labels]
  assert np.isclose(per_example.mean(), 1.0)
  # Each class carries the same total weight.
  np.testing.assert_allclose(np.bincount(labels, per_example), [10 / 3] * 3)


def test_class_weights_of_an_absent_class_are_zero():
  assert training_loop.class_weights(np.array([0, 0, 1]), 3)[2] == 0.0


def test_augmentation_moves_image_and_mask_together():
  image = np.full((_SIZE, _SIZE, 1), 0.2, np.float32)
  mask = np.zeros((_SIZE, _SIZE, 1), np.float32)
  image[4:14, 6:20], mask[4:14, 6:20] = 0.8, 1.0
  moved = 0
  for seed in range(8):
    out_image, out_mask = training_loop._augment(
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


# Trained, exported and served by the `exported` fixture below, at the size
# their backbone needs.
_EXPORTED_FAMILIES = ('lesion_net',)


@pytest.mark.parametrize('model_name', [name for name in registry.MODEL_CHOICES
                                        if name not in _EXPORTED_FAMILIES])
def test_one_epoch_returns_a_serving_model(model_name):
  model_config = configs.ModelConfig(name=model_name, image_size=_SIZE)
  result = training_loop.train(
      model_config, configs.TrainingConfig(epochs=1, batch_size=8, seed=5),
      features.CLASS_NAMES, _examples(4, seed=0), _examples(2, seed=1))
  assert (result.epochs_run, result.best_epoch) == (1, 0)
  images = np.stack([x[features.IMAGE_XF] for x in _examples(1, seed=2).as_numpy_iterator()])
  probs = result.scores(images)
  assert probs.shape == (3, 3)
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
  if not registry.spec(model_name).calibrated:  # the notebook's network, served as it was
    assert result.temperature == 1.0
  else:
    assert result.temperature > 0


def test_empty_train_split_is_a_clear_error():
  empty = _examples(1, seed=0).take(0)
  with pytest.raises(ValueError, match='train split holds no examples'):
    training_loop.train(configs.ModelConfig(image_size=_SIZE), configs.TrainingConfig(),
                   features.CLASS_NAMES, empty, _examples(1, seed=1))


def test_empty_eval_split_is_a_clear_error():
  with pytest.raises(ValueError, match='eval split holds no examples'):
    training_loop.train(configs.ModelConfig(image_size=_SIZE), configs.TrainingConfig(),
                   features.CLASS_NAMES, _examples(1, seed=0), _examples(1, seed=1).take(0))


def test_train_places_the_variables_with_the_given_strategy():
  strategy = tf.distribute.MirroredStrategy(['/cpu:0'])
  result = training_loop.train(
      configs.ModelConfig(name='seed_cnn', image_size=_SIZE),
      configs.TrainingConfig(epochs=1, batch_size=8),
      features.CLASS_NAMES, _examples(2, seed=0), _examples(1, seed=1),
      strategy=strategy)
  assert all(strategy.extended.variable_created_in_scope(w)
             for w in result.serving_model.weights)


def test_trainer_without_a_gpu_uses_the_default_strategy():
  if tf.config.list_physical_devices('GPU'):
    pytest.skip('a GPU is visible: the Trainer mirrors across it')
  assert run_fn.distribution_strategy() is tf.distribute.get_strategy()


def _mask_weights(model_name: str, labels, masks) -> np.ndarray:
  """The mask head's weight of each example, as `train` gives it."""
  model_spec = registry.spec(model_name)
  convert = training_loop._to_model_inputs(
      tf.ones([len(features.CLASS_NAMES)]), False, True, 0,
      training_loop._normal_index(model_spec, features.CLASS_NAMES))
  weights = []
  for index, (label, mask) in enumerate(zip(labels, masks)):
    _, _, weight = convert(tf.constant(index, tf.int64), {
        features.IMAGE_XF: tf.zeros([_SIZE, _SIZE, 1]),
        features.MASK_XF: tf.constant(mask, tf.float32),
        features.LABEL_XF: tf.constant(label, tf.int64)})
    weights.append(float(weight[model_lib.MASK_OUTPUT]))
  return np.array(weights)


def test_a_normal_scans_empty_mask_is_a_target_only_where_the_spec_says():
  lesion = np.zeros((_SIZE, _SIZE, 1), np.float32)
  lesion[4:12, 4:12] = 1.0
  empty = np.zeros_like(lesion)
  benign, normal = (features.CLASS_NAMES.index(c) for c in ('benign', features.NORMAL_CLASS))
  # An annotated lesion, a lesion image missing its mask, a normal scan.
  labels, masks = [benign, benign, normal], [lesion, empty, empty]
  np.testing.assert_array_equal(_mask_weights('lesion_net', labels, masks), [1, 0, 1])
  np.testing.assert_array_equal(_mask_weights('busi_net', labels, masks), [1, 0, 0])


def test_a_family_that_learns_from_normal_scans_needs_the_normal_class():
  with pytest.raises(ValueError, match="from the 'normal' class, which is not among"):
    training_loop._normal_index(registry.spec('lesion_net'), ('benign', 'malignant'))


_EXPORT_SIZE = 64


def _lesion_and_normal(seed: int) -> tf.data.Dataset:
  """A benign scan with its mask and a normal scan with an empty one."""
  rng = np.random.default_rng(seed)
  pairs = [synthetic_busi.make_image(label, rng, _EXPORT_SIZE, _EXPORT_SIZE)
           for label in ('benign', features.NORMAL_CLASS)]
  assert pairs[0][1].any() and not pairs[1][1].any()
  return tf.data.Dataset.from_tensor_slices({
      features.IMAGE_XF: np.array([p[0][..., None] / 255.0 for p in pairs], np.float32),
      features.MASK_XF: np.array([p[1][..., None] for p in pairs], np.float32),
      features.LABEL_XF: np.array([features.CLASS_NAMES.index('benign'),
                                   features.CLASS_NAMES.index(features.NORMAL_CLASS)],
                                  np.int64)})


@pytest.fixture(scope='module')
def transform_output(tmp_path_factory):
  return exported_model.run_transform(
      _EXPORT_SIZE, str(tmp_path_factory.mktemp('transform_output')))


@pytest.fixture(scope='module', params=_EXPORTED_FAMILIES)
def export(request, transform_output, tmp_path_factory):
  """(TrainResult, SavedModel folder) of one step of training, exported as run_fn does."""
  model_config = configs.ModelConfig(name=request.param, image_size=_EXPORT_SIZE)
  result = training_loop.train(
      model_config, configs.TrainingConfig(epochs=1, batch_size=2, seed=3),
      features.CLASS_NAMES, _lesion_and_normal(0), _lesion_and_normal(1))
  export_dir = str(tmp_path_factory.mktemp(request.param) / 'serving_model')
  signatures.export_serving_model(result.serving_model, transform_output,
                                  features.CLASS_NAMES, export_dir, result.temperature,
                                  result.operating_point, result.not_sure_cutoff)
  return result, export_dir


@pytest.fixture(scope='module')
def exported(export):
  """(TrainResult, loaded SavedModel) of `export`."""
  result, export_dir = export
  return result, tf.saved_model.load(export_dir)


@pytest.mark.integration
def test_an_imagenet_family_trains_one_step_on_a_lesion_and_a_normal_scan(exported):
  result, _ = exported
  assert (result.epochs_run, result.best_epoch) == (1, 0)
  assert all(np.isfinite(values[0]) for values in result.history.values())
  assert result.temperature > 0


@pytest.mark.integration
def test_its_two_signatures_serve_the_trained_networks_scores(exported):
  result, served = exported
  rng = np.random.default_rng(4)
  pngs = [exported_model.encode_png(synthetic_busi.make_image(label, rng)[0])
          for label in features.CLASS_NAMES]
  examples = [tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[png]))
  })).SerializeToString() for png in pngs]
  by_bytes = served.signatures[serving.SERVING_IMAGES](
      **{serving.IMAGE_BYTES_INPUT: tf.constant(pngs)})[serving.SCORES_OUTPUT].numpy()
  by_example = served.signatures[serving.SERVING_DEFAULT](
      **{serving.EXAMPLES_INPUT: tf.constant(examples)})[serving.SCORES_OUTPUT].numpy()
  np.testing.assert_allclose(by_bytes, by_example, rtol=1e-5, atol=1e-6)
  transformed = np.stack([preprocessing.decode_image(tf.constant(png), _EXPORT_SIZE).numpy()
                          for png in pngs])
  np.testing.assert_allclose(by_bytes, result.scores(transformed), rtol=1e-4, atol=1e-5)


def _head_kernel(serving_model) -> np.ndarray:
  """The class head's kernel: initialised at random, so a cold start differs from it."""
  return serving_model.get_layer(model_lib.CLASS_OUTPUT).get_weights()[0]


@pytest.mark.integration
def test_a_warm_start_begins_from_the_exported_networks_weights(export):
  result, export_dir = export
  served = _head_kernel(result.serving_model)
  model_config = configs.ModelConfig(name=_EXPORTED_FAMILIES[0], image_size=_EXPORT_SIZE)
  # Another seed: a cold start would draw another head.
  config = configs.TrainingConfig(epochs=1, batch_size=2, seed=11, learning_rate=1e-12)
  tf_keras.utils.set_random_seed(config.seed)
  _, cold = registry.build_model(model_config, len(features.CLASS_NAMES))
  assert not np.allclose(_head_kernel(cold), served, atol=1e-4)
  warm = training_loop.train(
      model_config, config,
      features.CLASS_NAMES, _lesion_and_normal(0), _lesion_and_normal(1),
      initial_weights=training_loop.warm_start_checkpoint(export_dir))
  # One step at a negligible rate: the weights are the served ones.
  np.testing.assert_allclose(_head_kernel(warm.serving_model), served, atol=1e-6)


@pytest.mark.integration
def test_a_checkpoint_of_another_class_list_is_refused(export):
  _, export_dir = export
  with pytest.raises(ValueError, match='do not fit this network .*incompatible tensor'):
    training_loop.train(
        configs.ModelConfig(name=_EXPORTED_FAMILIES[0], image_size=_EXPORT_SIZE),
        configs.TrainingConfig(epochs=1, batch_size=2), ('benign', 'malignant', 'normal', 'x'),
        _lesion_and_normal(0), _lesion_and_normal(1),
        initial_weights=training_loop.warm_start_checkpoint(export_dir))


@pytest.mark.integration
def test_a_checkpoint_of_another_family_is_refused(export):
  _, export_dir = export
  with pytest.raises(ValueError, match='do not fit this network'):
    training_loop.train(
        configs.ModelConfig(name='busi_net', image_size=_EXPORT_SIZE),
        configs.TrainingConfig(epochs=1, batch_size=2), features.CLASS_NAMES,
        _lesion_and_normal(0), _lesion_and_normal(1),
        initial_weights=training_loop.warm_start_checkpoint(export_dir))
