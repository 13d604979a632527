"""`preprocessing_fn` for Transform: encoded image bytes to model-ready tensors.

Everything here becomes part of the transform graph that the serving
signatures apply too, so a client sends the PNG or JPEG file as it is and gets
the same pixels the model was trained on: decoded, one channel, resized,
scaled to [0, 1].
"""

from typing import Any, Dict, Sequence

import tensorflow as tf

from contracts import features
from contracts import limits


_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_JPEG_SIGNATURE = b'\xff\xd8\xff'
# A PNG starts with its signature and the IHDR chunk: length (4 bytes), type
# 'IHDR' (4), then width and height as big-endian 32-bit integers.
_PNG_IHDR_TYPE_OFFSET = 12
_PNG_IHDR_SIZE_OFFSET = 16
_PNG_HEADER_BYTES = 24


def _png_height_width(encoded: tf.Tensor) -> tf.Tensor:
  # Padding makes a short payload read as zeros instead of failing the slice;
  # the IHDR check then rejects it with a message.
  padded = tf.strings.join([encoded, b'\0' * _PNG_HEADER_BYTES])
  has_ihdr = tf.equal(tf.strings.substr(padded, _PNG_IHDR_TYPE_OFFSET, 4), b'IHDR')
  checked = tf.debugging.Assert(
      has_ihdr & (tf.strings.length(encoded) >= _PNG_HEADER_BYTES),
      ['Invalid image: PNG header (IHDR) is missing or truncated'])
  with tf.control_dependencies([checked]):
    width_height = tf.io.decode_raw(
        tf.strings.substr(padded, _PNG_IHDR_SIZE_OFFSET, 8), tf.int32,
        little_endian=False)
  return tf.reverse(width_height, [0])


def declared_height_width(encoded: tf.Tensor) -> tf.Tensor:
  """int32 [height, width] read from a PNG or JPEG header, without decoding.

  Fails with InvalidArgumentError for anything that is not a PNG or JPEG.
  """
  is_png = tf.equal(tf.strings.substr(encoded, 0, len(_PNG_SIGNATURE)), _PNG_SIGNATURE)
  is_jpeg = tf.equal(tf.strings.substr(encoded, 0, len(_JPEG_SIGNATURE)),
                     _JPEG_SIGNATURE)
  checked = tf.debugging.Assert(is_png | is_jpeg, [tf.strings.format(
      'Invalid image: expected PNG or JPEG bytes, got {} bytes of something else',
      tf.strings.length(encoded))])
  with tf.control_dependencies([checked]):
    return tf.cond(is_png, lambda: _png_height_width(encoded),
                   lambda: tf.image.extract_jpeg_shape(encoded)[:2])


def decode_image(encoded: tf.Tensor, size: int) -> tf.Tensor:
  """One encoded PNG/JPEG (any channels, 8 or 16 bit) to float32 [size, size, 1].

  The header is checked first, so a payload that is not an image, or declares
  more than `limits.MAX_IMAGE_PIXELS` (ExampleGen's bound too, so anything
  ingested also transforms), fails with a message instead of being decoded.
  """
  height_width = tf.cast(declared_height_width(encoded), tf.int64)
  checked = tf.debugging.Assert(
      tf.reduce_all(height_width > 0) &
      (tf.reduce_prod(height_width) <= limits.MAX_IMAGE_PIXELS),
      [tf.strings.format(
          'Invalid image: {}x{} pixels; the limit is {} pixels in all',
          (height_width[1], height_width[0], limits.MAX_IMAGE_PIXELS))])
  with tf.control_dependencies([checked]):
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
  """The Transform entry point; `custom_config` comes from contracts.configs."""
  size = custom_config['model']['image_size']
  return {
      features.IMAGE_XF: decode_batch(inputs[features.IMAGE_KEY], size),
      features.MASK_XF: decode_batch(inputs[features.MASK_KEY], size, decode_mask),
      features.LABEL_XF: label_index(inputs[features.LABEL_KEY],
                                     custom_config['class_names']),
      features.SITE_XF: tf.reshape(inputs[features.SITE_KEY], [-1]),
  }
