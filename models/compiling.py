"""How each model family is compiled: optimizer, losses, and the metric to watch.

Each function compiles one training model and returns the name of the eval
metric early stopping watches, so `training_loop.train` needs no knowledge of the
family it fits.
"""

import tensorflow as tf
import tf_keras as keras

from contracts import configs
from models import model as model_lib

_MASK_LOSS_WEIGHT = 0.5


def _accuracy() -> keras.metrics.Metric:
  return keras.metrics.SparseCategoricalAccuracy(name='accuracy')


def _cosine_adamw(training_config: configs.TrainingConfig,
                  steps: int) -> keras.optimizers.Optimizer:
  """AdamW whose learning rate decays to zero over all `steps` (cosine)."""
  schedule = keras.optimizers.schedules.CosineDecay(
      training_config.learning_rate, decay_steps=max(1, steps))
  return keras.optimizers.AdamW(schedule, weight_decay=1e-4)


def compile_seed_cnn(training_model: keras.Model,
                     training_config: configs.TrainingConfig, steps: int) -> str:
  """The seed notebook's compile: Adam at a constant rate, whatever `steps` is."""
  del steps  # the notebook's rate does not decay
  training_model.compile(
      optimizer=keras.optimizers.Adam(training_config.learning_rate),
      loss=keras.losses.SparseCategoricalCrossentropy(),
      weighted_metrics=[_accuracy()])
  return 'val_loss'


def _dice_bce(y_true, y_pred):
  bce = keras.losses.binary_crossentropy(y_true, y_pred)
  intersection = tf.reduce_sum(y_true * y_pred, axis=[1, 2, 3])
  total = tf.reduce_sum(y_true + y_pred, axis=[1, 2, 3])
  dice = 1.0 - (2.0 * intersection + 1.0) / (total + 1.0)
  return tf.reduce_mean(bce, axis=[1, 2]) + dice


def compile_with_mask_head(training_model: keras.Model,
                           training_config: configs.TrainingConfig, steps: int) -> str:
  """Class and lesion-mask outputs; early stopping watches the class loss only."""
  training_model.compile(
      optimizer=_cosine_adamw(training_config, steps),
      loss={model_lib.CLASS_OUTPUT: keras.losses.SparseCategoricalCrossentropy(),
            model_lib.MASK_OUTPUT: _dice_bce},
      loss_weights={model_lib.CLASS_OUTPUT: 1.0,
                    model_lib.MASK_OUTPUT: _MASK_LOSS_WEIGHT},
      jit_compile=False,
      weighted_metrics={model_lib.CLASS_OUTPUT: [_accuracy()]})
  return f'val_{model_lib.CLASS_OUTPUT}_loss'
