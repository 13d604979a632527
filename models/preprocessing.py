"""`preprocessing_fn` for Transform: encoded image bytes to model-ready tensors.

Everything here becomes part of the transform graph that the serving
signatures apply too, so a client sends the PNG or JPEG file as it is and gets
the same pixels the model was trained on: decoded, one channel, resized,
scaled to [0, 1].
"""

from typing import Any, Dict, Sequence

import tensorflow as tf

from models import features


def decode_image(encoded: tf.Tensor, size: int) -> tf.Tensor:
  """One encoded PNG/JPEG (any channels, 8 or 16 bit) to float32 [size, size, 1]."""
  image = tf.io.decode_image(encoded, channels=1, dtype=tf.uint8,
                             expand_animations=False)
  image = tf.image.convert_image_dtype(image, tf.float32)
  image = tf.image.resize(image, [size, size], antialias=True)
  return tf.ensure_shape(tf.clip_by_value(image, 0.0, 1.0), [size, size, 1])


def decode_mask(encoded: tf.Tensor, size: int) -> tf.Tensor:
  """A lesion mask PNG to {0, 1} float32 [size, size, 1] at the model's size."""
  mask = tf.io.decode_png(encoded, channels=1)
  mask = tf.image.resize(tf.cast(mask > 0, tf.float32), [size, size])
  return tf.ensure_shape(tf.cast(mask > 0.5, tf.float32), [size, size, 1])


def decode_batch(encoded: tf.Tensor, size: int, decode=decode_image) -> tf.Tensor:
  """Decodes a [N] or [N, 1] batch of encoded images to [N, size, size, 1]."""
  return tf.map_fn(
      lambda e: decode(e, size),
      tf.reshape(encoded, [-1]),
      fn_output_signature=tf.TensorSpec([size, size, 1], tf.float32))


def label_index(labels: tf.Tensor, class_names: Sequence[str]) -> tf.Tensor:
  """Class names to their fixed indices; anything else becomes -1."""
  labels = tf.reshape(labels, [-1, 1])
  matches = tf.equal(labels, tf.constant(list(class_names))[tf.newaxis, :])
  index = tf.argmax(tf.cast(matches, tf.int64), axis=1)
  return tf.where(tf.reduce_any(matches, axis=1), index, tf.constant(-1, tf.int64))


def preprocessing_fn(inputs: Dict[str, tf.Tensor],
                     custom_config: Dict[str, Any]) -> Dict[str, tf.Tensor]:
  """The Transform entry point; `custom_config` comes from pipeline.configs."""
  size = custom_config['model']['image_size']
  return {
      features.IMAGE_XF: decode_batch(inputs[features.IMAGE_KEY], size),
      features.MASK_XF: decode_batch(inputs[features.MASK_KEY], size, decode_mask),
      features.LABEL_XF: label_index(inputs[features.LABEL_KEY],
                                     custom_config['class_names']),
  }
