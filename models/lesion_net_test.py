"""lesion_net: the soft box follows the mask, and the network trains.

Export through the serving signatures is tested with the registered family
(models/training_loop_test.py).
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from models import efficientnet_lite
from models import lesion_net
from models import torch_legacy_checkpoint

SIZE = 64
CLASS_OUTPUT = 'class_probs'
MASK_OUTPUT = 'mask_probs'


@pytest.fixture(scope='module')
def net():
  return lesion_net.build_lesion_net(SIZE, 3, CLASS_OUTPUT, MASK_OUTPUT,
                                     crop_size=32, imagenet_weights=False)


def _box(mask):
  box, presence = lesion_net.SoftLesionBox()(tf.constant(mask[np.newaxis, ..., np.newaxis]))
  return box.numpy()[0], float(presence.numpy()[0, 0])


def test_the_box_is_a_square_around_the_lesion_with_a_margin():
  mask = np.zeros((40, 40), np.float32)
  mask[8:16, 20:36] = 1.0  # 8 rows by 16 columns, centred at (0.3, 0.7)
  box, presence = _box(mask)
  side = lesion_net.CROP_MARGIN * 16 / 40
  np.testing.assert_allclose(box, [0.3 - side / 2, 0.7 - side / 2,
                                   0.3 + side / 2, 0.7 + side / 2], atol=1e-3)
  assert presence == pytest.approx(1.0)


def test_an_empty_mask_gives_the_whole_image():
  box, presence = _box(np.zeros((40, 40), np.float32))
  np.testing.assert_allclose(box, [0.0, 0.0, 1.0, 1.0], atol=1e-6)
  assert presence == 0.0


def test_a_tiny_lesion_gets_the_smallest_crop_not_a_smaller_one():
  mask = np.zeros((40, 40), np.float32)
  mask[20, 20] = 1.0
  box, _ = _box(mask)
  assert box[2] - box[0] == pytest.approx(lesion_net.MIN_CROP_FRACTION, abs=1e-4)


def _columns(size):
  """An image whose every pixel holds its column index."""
  return tf.constant(np.tile(np.arange(size, dtype=np.float32), (size, 1))[None, ..., None])


def test_the_crop_resamples_the_box_from_the_image():
  # The left half of the image, at half its size: exactly columns 0 to 3.
  crop = lesion_net.LesionCrop(4)([_columns(8), tf.constant([[0.0, 0.0, 1.0, 0.5]])])
  np.testing.assert_allclose(crop[0, :, :, 0], np.tile([0.0, 1.0, 2.0, 3.0], (4, 1)),
                             atol=1e-5)
  # The middle half, twice as large: each column's centre lies between two pixels.
  crop = lesion_net.LesionCrop(8)([_columns(8), tf.constant([[0.0, 0.25, 1.0, 0.75]])])
  np.testing.assert_allclose(crop[0, 0, :, 0], np.arange(8) / 2 + 1.75, atol=1e-5)


def test_the_crop_is_crop_and_resize_also_past_the_image_edges():
  rng = np.random.default_rng(0)
  image = tf.constant(rng.random((6, 24, 24, 1), dtype=np.float32))
  centre, half = rng.random((6, 2)), rng.uniform(0.1, 0.6, (6, 1))
  box = np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)
  # crop_and_resize takes the first and last sample's place, in fractions of
  # the span between the outermost pixel centres.
  inset = 0.5 * (box[:, 2:] - box[:, :2]) / 16
  first, last = (box[:, :2] + inset) * 24 - 0.5, (box[:, 2:] - inset) * 24 - 0.5
  expected = tf.image.crop_and_resize(image, np.concatenate([first, last], axis=1) / 23,
                                      np.arange(6), (16, 16))
  np.testing.assert_allclose(lesion_net.LesionCrop(16)([image, tf.constant(box)]), expected,
                             atol=1e-5)


def test_the_whole_image_box_is_the_image_itself():
  image = tf.random.uniform((2, 16, 16, 1), seed=3)
  crop = lesion_net.LesionCrop(16)([image, tf.constant([[0.0, 0.0, 1.0, 1.0]] * 2)])
  np.testing.assert_allclose(crop, image, atol=1e-6)


def test_the_outputs_have_the_documented_shapes(net):
  images = np.random.default_rng(0).random((2, SIZE, SIZE, 1), dtype=np.float32)
  probs, mask = net.training(images, training=False)
  assert probs.shape == (2, 3) and mask.shape == (2, SIZE, SIZE, 1)
  np.testing.assert_allclose(probs.numpy().sum(axis=1), 1.0, rtol=1e-5)
  located = net.localiser(images, training=False)
  assert located[lesion_net.LESION_BOX].shape == (2, 4)
  assert located[lesion_net.LESION_PRESENCE].shape == (2, 1)
  np.testing.assert_allclose(located[MASK_OUTPUT], mask, rtol=1e-5)
  np.testing.assert_allclose(net.serving(images, training=False), probs, rtol=1e-5)


def test_one_step_trains_on_lesions_and_a_normal_scan(net):
  rng = np.random.default_rng(1)
  images = rng.random((3, SIZE, SIZE, 1), dtype=np.float32)
  masks = np.zeros((3, SIZE, SIZE, 1), np.float32)
  masks[0, 10:30, 20:40] = 1.0
  masks[1, 30:50, 5:25] = 1.0  # masks[2] stays empty: a normal scan
  labels = np.array([0, 1, 2])
  net.training.compile(optimizer=keras.optimizers.Adam(1e-3),
                       loss={CLASS_OUTPUT: keras.losses.SparseCategoricalCrossentropy(),
                             MASK_OUTPUT: keras.losses.BinaryCrossentropy()})
  decoder_before = net.training.get_layer('mask_logits').get_weights()[0].copy()
  head_before = net.training.get_layer(CLASS_OUTPUT).get_weights()[0].copy()
  history = net.training.fit(images, {CLASS_OUTPUT: labels, MASK_OUTPUT: masks},
                             batch_size=3, epochs=1, verbose=0)
  assert np.isfinite(history.history['loss'][0])
  assert not np.allclose(net.training.get_layer('mask_logits').get_weights()[0],
                         decoder_before)
  assert not np.allclose(net.training.get_layer(CLASS_OUTPUT).get_weights()[0],
                         head_before)


def test_the_backbone_starts_from_the_imagenet_weights():
  net = lesion_net.build_lesion_net(SIZE, 3, CLASS_OUTPUT, MASK_OUTPUT)
  state = torch_legacy_checkpoint.read_state_dict(efficientnet_lite.imagenet_weights_path())
  stem = [w for w in net.serving.weights if 'stem_conv' in w.name]
  assert len(stem) == 1
  np.testing.assert_array_equal(stem[0].numpy(),
                                state['_conv_stem.weight'].transpose(2, 3, 1, 0))


def test_an_image_size_the_backbone_cannot_halve_is_refused():
  with pytest.raises(ValueError, match='divisible by 32, got 100'):
    lesion_net.build_lesion_net(100, 3, CLASS_OUTPUT, MASK_OUTPUT,
                                imagenet_weights=False)


def test_the_crop_reads_the_input_at_its_own_finer_resolution():
  net = lesion_net.build_lesion_net(2 * SIZE, 3, CLASS_OUTPUT, MASK_OUTPUT,
                                    context_size=SIZE, imagenet_weights=False)
  images = np.random.default_rng(2).random((2, 2 * SIZE, 2 * SIZE, 1), dtype=np.float32)
  probs, mask = net.training(images, training=False)
  assert probs.shape == (2, 3) and mask.shape == (2, 2 * SIZE, 2 * SIZE, 1)
  crop_layer = net.training.get_layer('lesion_crop')
  assert crop_layer.input[0].shape[1:3] == (2 * SIZE, 2 * SIZE)
  assert crop_layer.output.shape[1:3] == (SIZE, SIZE)
  assert net.training.get_layer('context_resize').output.shape[1:3] == (SIZE, SIZE)


def test_a_context_larger_than_the_input_is_refused():
  with pytest.raises(ValueError, match='context size \\(128\\) cannot exceed the image size \\(64\\)'):
    lesion_net.build_lesion_net(SIZE, 3, CLASS_OUTPUT, MASK_OUTPUT, context_size=128,
                                imagenet_weights=False)
