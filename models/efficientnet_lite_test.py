"""EfficientNet-Lite0: the converted ImageNet network sees what it should."""

import os

import matplotlib
import numpy as np
import pytest
from PIL import Image

from models import efficientnet_lite
from models import torch_legacy_checkpoint

MILITARY_UNIFORM = 652


@pytest.fixture(scope='module')
def imagenet_state():
  return torch_legacy_checkpoint.read_state_dict(efficientnet_lite.imagenet_weights_path())


def _grace_hopper(size):
  """matplotlib's bundled photograph, centre-cropped to a square, RGB 0-255."""
  path = os.path.join(matplotlib.get_data_path(), 'sample_data', 'grace_hopper.jpg')
  image = Image.open(path).convert('RGB')
  width, height = image.size
  side = min(width, height)
  left, top = (width - side) // 2, (height - side) // 2
  image = image.crop((left, top, left + side, top + side)).resize((size, size),
                                                                 Image.BILINEAR)
  return np.asarray(image, np.float32)[np.newaxis]


def test_the_imagenet_network_sees_a_military_uniform(imagenet_state):
  model = efficientnet_lite.build_efficientnet_lite0(224, include_top=True)
  efficientnet_lite.load_torch_weights(model, imagenet_state)
  probabilities = model(_grace_hopper(224), training=False).numpy()[0]
  assert probabilities.shape == (efficientnet_lite.IMAGENET_CLASSES,)
  assert int(np.argmax(probabilities)) == MILITARY_UNIFORM
  assert model.count_params() == pytest.approx(4.69e6, rel=0.01)


def test_the_packaged_weights_build_without_a_top():
  model = efficientnet_lite.build_imagenet_efficientnet_lite0(None, include_top=False)
  features = model(_grace_hopper(160), training=False)
  assert features.shape == (1, 5, 5, efficientnet_lite.HEAD_FILTERS)


def test_the_feature_maps_are_at_strides_8_16_and_32():
  model = efficientnet_lite.build_efficientnet_lite0(128, include_top=False)
  maps = efficientnet_lite.feature_extractor(model)(np.zeros((2, 128, 128, 3), np.float32))
  assert [tuple(m.shape) for m in maps] == [(2, 16, 16, 40), (2, 8, 8, 112),
                                            (2, 4, 4, 1280)]


def test_the_blocks_are_b0s():
  specs = efficientnet_lite.block_specs()
  assert len(specs) == 16
  assert [s.kernel_size for s in specs] == [3] * 3 + [5] * 2 + [3] * 3 + [5] * 7 + [3]
  assert sum(s.strides == 2 for s in specs) == 4
  assert [s.expand_ratio for s in specs] == [1] + [6] * 15
  assert specs[-1].output_filters == 320


def _no_top_model():
  return efficientnet_lite.build_efficientnet_lite0(64, include_top=False)


def test_a_missing_tensor_fails_loudly(imagenet_state):
  state = dict(imagenet_state)
  del state['_blocks.3._depthwise_conv.weight']
  with pytest.raises(ValueError, match=r"missing \['_blocks\.3\._depthwise_conv\.weight'\]"):
    efficientnet_lite.load_torch_weights(_no_top_model(), state)


def test_an_unexpected_tensor_fails_loudly(imagenet_state):
  state = dict(imagenet_state, **{'_blocks.0._se_reduce.weight': np.zeros((8, 32, 1, 1))})
  with pytest.raises(ValueError, match=r"unexpected \['_blocks\.0\._se_reduce\.weight'\]"):
    efficientnet_lite.load_torch_weights(_no_top_model(), state)


def test_an_ill_shaped_tensor_fails_loudly(imagenet_state):
  state = dict(imagenet_state, **{'_conv_head.weight': np.zeros((1280, 320, 3, 3))})
  with pytest.raises(ValueError, match='_conv_head has shapes.*head_conv needs'):
    efficientnet_lite.load_torch_weights(_no_top_model(), state)


def test_a_missing_weights_package_is_named(monkeypatch):
  monkeypatch.setattr(efficientnet_lite, 'WEIGHTS_PACKAGE', 'no_such_weights_package')
  with pytest.raises(FileNotFoundError, match='no_such_weights_package.*requirements.lock'):
    efficientnet_lite.imagenet_weights_path()
