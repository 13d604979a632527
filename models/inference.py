"""How a trained network's output becomes the scores a client receives.

The exported signatures and the quality benchmark both call `class_scores`,
so the benchmark measures exactly what TF Serving will return.
"""

import tensorflow as tf
import tf_keras as keras

from models import calibration


def class_scores(network: keras.Model, images: tf.Tensor,
                 temperature: float) -> tf.Tensor:
  """Softmax scores [N, C] for transformed images [N, H, W, 1]."""
  return calibration.temperature_scale(network(images, training=False), temperature)
