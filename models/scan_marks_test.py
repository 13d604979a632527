"""Tests of the synthetic caliper and text marks."""

import numpy as np
import pytest
import tensorflow as tf

from models import scan_marks

_SIZE = 64


def _grid(size=_SIZE):
  rows = tf.cast(tf.range(size), tf.float32)[:, tf.newaxis]
  columns = tf.cast(tf.range(size), tf.float32)[tf.newaxis, :]
  return rows, columns, float(size)


def _seed(k):
  return tf.constant([k, 3], tf.int64)


def test_rate_zero_leaves_the_image_as_it_was():
  image = np.random.default_rng(0).uniform(0, 1, (_SIZE, _SIZE, 1)).astype(np.float32)
  out = scan_marks.paint(tf.constant(image), _seed(1), 0.0)
  np.testing.assert_array_equal(out.numpy(), image)


def test_rate_one_always_marks_a_dark_image_and_only_brightens():
  image = np.full((_SIZE, _SIZE, 1), 0.1, np.float32)
  for k in range(10):
    out = scan_marks.paint(tf.constant(image), _seed(k), 1.0).numpy()
    assert out.shape == image.shape
    assert (out >= image).all()
    marked = (out > image).mean()
    # Thin marks: a few pixels, never a blotch over the scan.
    assert 0 < marked < 0.08, f'seed {k}: {marked:.1%} of pixels marked'
    assert out.max() >= 0.6


def test_marks_are_reproducible_from_the_seed():
  image = tf.zeros([_SIZE, _SIZE, 1])
  first = scan_marks.paint(image, _seed(4), 1.0).numpy()
  np.testing.assert_array_equal(first, scan_marks.paint(image, _seed(4), 1.0).numpy())
  assert not np.array_equal(first, scan_marks.paint(image, _seed(5), 1.0).numpy())


@pytest.mark.parametrize('k', range(5))
def test_calipers_are_two_crosses_joined_by_dashes(k):
  drawn = scan_marks.calipers(_grid(256), _seed(k)).numpy()
  assert set(np.unique(drawn)) <= {0.0, 1.0}
  # A cross at 256 px has arms of about 4-8 px each way, in 1-2 px lines:
  # more than a dot, far less than the image.
  assert 10 <= drawn.sum() < 0.02 * drawn.size


def test_text_is_a_short_line_of_glyphs():
  for k in range(5):
    drawn = scan_marks.text(_grid(256), _seed(k)).numpy()
    rows = np.flatnonzero(drawn.any(axis=1))
    assert rows.size > 0
    # Five cells of 1 or 2 px: a line of text, not a block.
    assert rows.max() - rows.min() < 10
    assert drawn.sum() < 0.01 * drawn.size


def test_marks_in_a_tf_data_map_run_in_graph_mode():
  images = tf.data.Dataset.from_tensor_slices(tf.zeros([3, _SIZE, _SIZE, 1]))
  marked = images.enumerate().map(
      lambda i, image: scan_marks.paint(image, tf.stack([i, tf.constant(1, tf.int64)]), 1.0))
  outs = list(marked.as_numpy_iterator())
  assert len(outs) == 3 and all(out.max() > 0 for out in outs)
