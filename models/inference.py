"""How a trained network's output becomes the scores a client receives.

The exported signatures and the quality benchmark both call `class_scores`,
so the benchmark measures exactly what TF Serving will return.
"""

import tensorflow as tf
import tf_keras as keras

from models import calibration


def class_scores(network: keras.Model, images: tf.Tensor, temperature: float,
                 flip_average: bool) -> tf.Tensor:
  """Softmax scores [N, C] for transformed images [N, H, W, 1].

  With `flip_average`, the network also sees each image mirrored left-right
  and the two predictions are averaged: a breast scan's laterality carries no
  class information, and the average is steadier than either view.
  """
  probs = network(images, training=False)
  if flip_average:
    mirrored = network(tf.reverse(images, axis=[2]), training=False)
    probs = (probs + mirrored) / 2.0
  return calibration.temperature_scale(probs, temperature)
