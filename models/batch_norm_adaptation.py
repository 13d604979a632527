"""Re-estimates a network's batch-norm statistics on another site's scans (AdaBN).

Every batch-norm layer normalises its input with the means and variances it
saw at the training site; a scanner that shifts them shifts every feature
after it. Re-estimating them on a new site's scans, with every weight kept,
carries a model to that site measurably better than its training statistics
do (bench/README.md, "Sites never seen"). Only images are needed, no labels.
"""

import math

import numpy as np
import tensorflow as tf
import tf_keras as keras

# The running averages follow at least this many batches at this momentum, so
# less than 1% of the training site's statistics remain (0.95 ** 100).
MOMENTUM = 0.95
MIN_BATCHES = 100
BATCH_SIZE = 32


def batch_norm_layers(model: keras.Model):
  return [layer for layer in model.submodules
          if isinstance(layer, keras.layers.BatchNormalization)]


def adapt(model: keras.Model, images: np.ndarray, seed: int = 0) -> int:
  """Moves every batch-norm layer's moving statistics to those of `images`
  (model inputs, [N, ...]); returns how many layers moved.

  The layers run in training mode over shuffled batches, then get back their
  trainability and momentum; no other weight changes.
  """
  layers = batch_norm_layers(model)
  if not layers:
    return 0
  if len(images) == 0:
    raise ValueError('Batch-norm adaptation needs at least one scan of the site')
  kept = [(layer.trainable, layer.momentum) for layer in layers]
  for layer in layers:
    layer.trainable, layer.momentum = True, MOMENTUM
  rng = np.random.default_rng(seed)
  batches_per_pass = math.ceil(len(images) / BATCH_SIZE)
  # Traced after the momentum is set, which the graph then holds.
  update = tf.function(lambda batch: model(batch, training=True), reduce_retracing=True)
  try:
    for _ in range(math.ceil(MIN_BATCHES / batches_per_pass)):
      shuffled = images[rng.permutation(len(images))]
      for start in range(0, len(shuffled), BATCH_SIZE):
        update(tf.constant(shuffled[start:start + BATCH_SIZE]))
  finally:
    for layer, (trainable, momentum) in zip(layers, kept):
      layer.trainable, layer.momentum = trainable, momentum
  return len(layers)
