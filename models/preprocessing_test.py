"""preprocessing_fn on real encoded images: what Transform and serving compute."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from contracts import features
from models import preprocessing

_CONFIG = {'model': {'image_size': 16}, 'class_names': list(features.CLASS_NAMES)}


def _encode(pixels: np.ndarray, fmt: str = 'PNG', mode: str = None) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(pixels, mode=mode).save(buffer, format=fmt)
  return buffer.getvalue()


def _run(images, masks, labels):
  return preprocessing.preprocessing_fn({
      features.IMAGE_KEY: tf.constant(images)[:, tf.newaxis],
      features.MASK_KEY: tf.constant(masks)[:, tf.newaxis],
      features.LABEL_KEY: tf.constant(labels)[:, tf.newaxis],
      features.SITE_KEY: tf.constant([b'busi'] * len(labels))[:, tf.newaxis],
  }, _CONFIG)


def test_grey_rgb_rgba_and_jpeg_give_one_scaled_channel():
  grey = np.full((20, 30), 255, np.uint8)
  rgb = np.zeros((20, 30, 3), np.uint8)
  rgba = np.dstack([np.full((20, 30, 3), 128, np.uint8), np.full((20, 30), 255, np.uint8)])
  images = [_encode(grey), _encode(rgb), _encode(rgba), _encode(np.full((20, 30), 64, np.uint8), 'JPEG')]
  mask = _encode(np.zeros((20, 30), np.uint8))
  out = _run(images, [mask] * 4, [b'benign'] * 4)
  image = out[features.IMAGE_XF].numpy()
  assert image.shape == (4, 16, 16, 1)
  assert image.dtype == np.float32
  np.testing.assert_allclose(image[0], 1.0, atol=1e-6)
  np.testing.assert_allclose(image[1], 0.0, atol=1e-6)
  np.testing.assert_allclose(image[2], 128 / 255, atol=0.01)
  np.testing.assert_allclose(image[3], 64 / 255, atol=0.03)


def test_mask_is_binary_and_resized():
  pixels = np.zeros((40, 40), np.uint8)
  pixels[:20] = 255
  out = _run([_encode(pixels)], [_encode(pixels)], [b'malignant'])
  mask = out[features.MASK_XF].numpy()[0, ..., 0]
  assert set(np.unique(mask)) == {0.0, 1.0}
  assert mask[:8].all() and not mask[8:].any()


def test_labels_map_to_fixed_indices_and_unknown_to_minus_one():
  image = _encode(np.zeros((8, 8), np.uint8))
  labels = [b'benign', b'malignant', b'normal', b'cyst']
  out = _run([image] * 4, [image] * 4, labels)
  assert out[features.LABEL_XF].numpy().tolist() == [0, 1, 2, -1]
  # The site passes through, for the Trainer's per-site operating points.
  assert out[features.SITE_XF].numpy().tolist() == [b'busi'] * 4


def test_undecodable_bytes_fail_loudly():
  image = _encode(np.zeros((8, 8), np.uint8))
  with pytest.raises(tf.errors.InvalidArgumentError):
    _run([b'not an image'], [image], [b'benign'])
