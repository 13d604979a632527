"""Fits a model on transformed examples: augmentation, class weights, early stopping.

`run_fn` and the quality benchmark both call `train`, so a benchmark number is
a number for the code the pipeline runs. Datasets hold unbatched dicts of
transformed features (`image_xf`, `mask_xf`, `label_xf`).
"""

import dataclasses
import functools
import math
import os
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

import models
from contracts import configs
from contracts import features
from contracts import operating_point as op
from models import calibration
from models import inference
from models import model as model_lib
from models import not_sure
from models import operating_point
from models import registry


@dataclasses.dataclass
class TrainResult:
  """The trained classifier, how it trained, and how its output becomes served scores."""
  serving_model: keras.Model
  # Keras' per-epoch metrics, train and eval ("val_").
  history: Dict[str, list]
  epochs_run: int
  # The epoch (from 0) whose weights were kept: the best on the eval split.
  best_epoch: int
  # Fitted on the eval split (1.0: not calibrated, as for the seed's network).
  temperature: float
  # The malignant threshold of the served decision, chosen on the eval split's
  # calibrated scores.
  operating_point: op.OperatingPoint
  # The "not sure" flag's cut-off, set on the eval split's calibrated scores
  # (models/not_sure.py).
  not_sure_cutoff: float
  # Each site's own, where the eval split holds enough of its cancers
  # (operating_point.choose_by_site); empty for a one-site run.
  site_operating_points: Dict[str, op.OperatingPoint] = dataclasses.field(
      default_factory=dict)

  def scores(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The scores the exported model returns, for transformed images."""
    return _scores(self.serving_model, images, self.temperature, batch_size)


def _scores(serving_model: keras.Model, images: np.ndarray, temperature: float,
            batch_size: int = 64) -> np.ndarray:
  return np.concatenate([
      inference.class_scores(serving_model, tf.constant(images[i:i + batch_size]),
                             temperature).numpy()
      for i in range(0, len(images), batch_size)])


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """Inverse-frequency weights, normalised so the average example weighs 1."""
  counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
  weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)
  return weights.astype(np.float32)


def _augment(image: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor):
  """Scanner-like variation, the same geometry for image and mask."""
  seeds = tf.random.experimental.stateless_split(seed, 6)
  both = tf.concat([image, mask], axis=-1)
  both = tf.image.stateless_random_flip_left_right(both, seeds[0])
  size = tf.shape(both)[0]
  crop = tf.cast(tf.cast(size, tf.float32) *
                 tf.random.stateless_uniform([], seeds[1], 0.8, 1.0), tf.int32)
  both = tf.image.stateless_random_crop(both, [crop, crop, 2], seeds[2])
  both = tf.image.resize(both, [size, size])
  image, mask = both[..., :1], tf.cast(both[..., 1:] > 0.5, tf.float32)
  image = tf.image.stateless_random_contrast(image, 0.7, 1.3, seeds[3])
  image = tf.image.stateless_random_brightness(image, 0.1, seeds[4])
  gamma = tf.random.stateless_uniform([], seeds[5], 0.7, 1.4)
  image = tf.clip_by_value(image, 0.0, 1.0) ** gamma
  return image, mask


def _to_model_inputs(weights: tf.Tensor, augment: bool, multitask: bool, seed: int,
                     normal_index: int):
  """A function from (index, example) to the model's (inputs, targets, weights).

  `normal_index` is the label index whose empty masks are targets (-1: none).
  """

  def convert(index, example):
    image, mask = example[features.IMAGE_XF], example[features.MASK_XF]
    if augment:
      image, mask = _augment(image, mask, tf.stack([index, tf.constant(seed, tf.int64)]))
    label = example[features.LABEL_XF]
    weight = tf.gather(weights, label)
    if not multitask:
      return image, label, weight
    # An empty mask on a lesion image is a missing annotation, not "no
    # lesion", so it teaches the mask head nothing; a normal scan's empty mask
    # is the truth when the family learns it (`normal_mask_is_target`).
    mask_is_target = tf.logical_or(tf.reduce_max(example[features.MASK_XF]) > 0,
                                   tf.equal(label, normal_index))
    return (image,
            {model_lib.CLASS_OUTPUT: label, model_lib.MASK_OUTPUT: mask},
            {model_lib.CLASS_OUTPUT: weight,
             model_lib.MASK_OUTPUT: tf.cast(mask_is_target, tf.float32)})

  return convert


def _batches(dataset: tf.data.Dataset, weights: np.ndarray, batch_size: int, seed: int,
             training: bool, augment: bool, multitask: bool,
             normal_index: int) -> tf.data.Dataset:
  """Batches of (image, label(s), weight(s)); `multitask` adds the mask target."""
  dataset = dataset.cache()
  if training:
    dataset = dataset.shuffle(2048, seed=seed, reshuffle_each_iteration=True)
  # Enumerating after the shuffle gives each epoch's copy of an image a fresh,
  # yet reproducible, augmentation seed.
  dataset = dataset.enumerate()
  dataset = dataset.map(
      _to_model_inputs(tf.constant(weights), training and augment, multitask, seed,
                       normal_index),
      num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def train(model_config: configs.ModelConfig,
          training_config: configs.TrainingConfig,
          class_names: Sequence[str],
          train_examples: tf.data.Dataset,
          eval_examples: tf.data.Dataset,
          log_dir: Optional[str] = None,
          strategy: Optional[tf.distribute.Strategy] = None,
          initial_weights: Optional[str] = None) -> TrainResult:
  """Trains the configured network; returns its serving model at its best epoch
  on the eval split, with its temperature fitted there, and its malignant
  operating point and "not sure" cut-off chosen there on the calibrated scores.

  `strategy` (default: the current one) holds the variables; the batch size is
  the global batch, split across its replicas. `initial_weights`, a checkpoint
  whose `model` is a serving model of the same family, size and classes (a
  served SavedModel's variables, see `warm_start_checkpoint`), replaces the
  network's initial weights: a warm start.
  """
  models.configure_tensorflow()
  strategy = strategy or tf.distribute.get_strategy()
  model_spec = registry.spec(model_config.name)
  keras.utils.set_random_seed(training_config.seed)
  malignant = operating_point.malignant_index(class_names)
  labels = _train_labels(train_examples)
  _check_eval_split(eval_examples)
  steps_per_epoch = math.ceil(labels.size / training_config.batch_size)
  with strategy.scope():
    training_model, serving_model = registry.build_model(model_config, len(class_names))
    if initial_weights:
      restore_network(serving_model, initial_weights)
    monitor = model_spec.compile(training_model, training_config,
                                 steps_per_epoch * training_config.epochs)
  batches = functools.partial(_batches, weights=class_weights(labels, len(class_names)),
                              batch_size=training_config.batch_size,
                              seed=training_config.seed,
                              augment=model_spec.augments_in_input_pipeline,
                              multitask=model_spec.has_mask_head,
                              normal_index=_normal_index(model_spec, class_names))
  history = _fit(training_model, monitor, training_config, log_dir,
                 batches(train_examples, training=True),
                 batches(eval_examples, training=False))
  eval_images, eval_labels, eval_sites = _arrays(eval_examples)
  temperature = _temperature(model_spec, serving_model, eval_images, eval_labels)
  eval_scores = _scores(serving_model, eval_images, temperature)
  malignant_scores = eval_scores[:, malignant]
  target = training_config.target_malignant_sensitivity
  return TrainResult(
      serving_model, history, len(history['loss']), int(np.argmin(history[monitor])),
      temperature,
      operating_point.choose(malignant_scores, eval_labels == malignant, target),
      not_sure.choose_cutoff(eval_scores),
      operating_point.choose_by_site(malignant_scores, eval_labels == malignant,
                                     eval_sites, target))


def warm_start_checkpoint(saved_model_dir: str) -> str:
  """The checkpoint of an exported serving model's variables, for `initial_weights`.

  `signatures.export_serving_model` saves a module whose `model` is the serving
  network, so its variables are an object-based checkpoint with the network at
  `model`, as `write_network` writes it.
  """
  return os.path.join(saved_model_dir, tf.saved_model.VARIABLES_DIRECTORY,
                      tf.saved_model.VARIABLES_FILENAME)


def write_network(serving_model: keras.Model, prefix: str) -> str:
  """Saves a serving model's weights where `initial_weights` can read them."""
  return tf.train.Checkpoint(model=serving_model).write(prefix)


def restore_network(serving_model: keras.Model, checkpoint: str) -> None:
  """Loads every weight of `serving_model` from `checkpoint`, matched by structure.

  The rest of a SavedModel (the Transform layer, constants) is ignored; a
  network weight the checkpoint lacks, or of another shape, is an error: a
  partial warm start would silently mix initialisations.
  """
  try:
    status = tf.train.Checkpoint(model=serving_model).read(checkpoint)
    status.expect_partial()
    status.assert_existing_objects_matched()
  except (ValueError, AssertionError) as error:
    raise ValueError(f'The weights in {checkpoint} do not fit this network '
                     f'({str(error).splitlines()[0]}): a warm start needs a model of the '
                     'same family, input size and classes.') from None


def _train_labels(train_examples: tf.data.Dataset) -> np.ndarray:
  """The train split's label indices; class weights and the step count need them."""
  labels = np.array([int(e[features.LABEL_XF]) for e in
                     train_examples.map(lambda e: {features.LABEL_XF: e[features.LABEL_XF]})
                     .as_numpy_iterator()])
  if labels.size == 0:
    raise ValueError('The train split holds no examples.')
  return labels


def _normal_index(model_spec: registry.ModelSpec, class_names: Sequence[str]) -> int:
  """The label index whose empty masks the mask head learns from; -1: none."""
  if not model_spec.normal_mask_is_target:
    return -1
  if features.NORMAL_CLASS not in class_names:
    raise ValueError(f'{model_spec.name} learns "no lesion" from the '
                     f'{features.NORMAL_CLASS!r} class, which is not among the '
                     f'classes {", ".join(class_names)}')
  return list(class_names).index(features.NORMAL_CLASS)


def _check_eval_split(eval_examples: tf.data.Dataset) -> None:
  if not any(True for _ in eval_examples.take(1)):
    raise ValueError('The eval split holds no examples: early stopping and '
                     'calibration need it.')


def _temperature(model_spec: registry.ModelSpec, serving_model: keras.Model,
                 eval_images: np.ndarray, eval_labels: np.ndarray) -> float:
  """The temperature the served scores use, fitted on the eval split; 1.0 uncalibrated."""
  if not model_spec.calibrated:
    return 1.0
  return calibration.fit_temperature(_scores(serving_model, eval_images, 1.0), eval_labels)


def _fit(training_model: keras.Model, monitor: str,
         training_config: configs.TrainingConfig, log_dir: Optional[str],
         train_batches: tf.data.Dataset, eval_batches: tf.data.Dataset) -> Dict[str, list]:
  """Fits the network with early stopping on the eval split; keeps its best epoch.

  Seeded again after building and compiling, so the fit draws the same random
  numbers whatever the family's construction drew.
  """
  keras.utils.set_random_seed(training_config.seed)
  stopper = keras.callbacks.EarlyStopping(
      monitor=monitor, patience=training_config.early_stopping_patience,
      restore_best_weights=True)
  callbacks = [stopper, keras.callbacks.TerminateOnNaN()]
  if log_dir:
    callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, update_freq='epoch'))
  history = training_model.fit(
      train_batches, validation_data=eval_batches, epochs=training_config.epochs,
      callbacks=callbacks, verbose=2)
  # EarlyStopping restores the best weights only when it stops early.
  if stopper.best_weights is not None:
    training_model.set_weights(stopper.best_weights)
  return history.history


def _arrays(examples: tf.data.Dataset):
  """(images, labels, sites) of unbatched transformed examples, as numpy arrays;
  the sites are '' for examples that carry none (the bench's arrays)."""
  has_site = features.SITE_XF in examples.element_spec
  triples = examples.map(lambda e: (e[features.IMAGE_XF], e[features.LABEL_XF],
                                    e[features.SITE_XF] if has_site else tf.constant(b'')))
  images, labels, sites = zip(*triples.as_numpy_iterator())
  return np.stack(images), np.array(labels), np.array([s.decode() for s in sites])

