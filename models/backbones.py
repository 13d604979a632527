"""ImageNet backbones (MobileNetV2, EfficientNetB0, EfficientNet-Lite0) as BUSI
classifiers.

A group that has the ImageNet weights on disk can start from them instead of
from scratch; `ModelConfig.backbone_weights` names the Keras weights file of
the backbone without its top (e.g. the
`mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_128_no_top.h5` that
Keras publishes). Nothing is downloaded: without a file the backbone starts
from random weights, which is what the tests and this CPU-only project's
benchmarks use.

EfficientNet-Lite0 needs no file: its ImageNet weights come with an installed
package (models/efficientnet_lite.py), so it always starts from them.

The transformed image is one grey channel in [0, 1]; each backbone gets it
repeated to three channels and scaled to the range its ImageNet training saw,
so pretrained filters see the intensities they were trained on.
"""

import dataclasses
import os
from typing import Callable, Dict, Tuple

import tf_keras as keras
from tf_keras import layers

from contracts import configs
from contracts import features
from models import efficientnet_lite


@dataclasses.dataclass(frozen=True)
class _Backbone:
  application: Callable[..., keras.Model]
  # The affine map from [0, 1] to the backbone's expected input range.
  scale: float
  offset: float


_BACKBONES: Dict[str, _Backbone] = {
    # MobileNetV2 was trained on inputs in [-1, 1].
    'mobilenet_v2': _Backbone(keras.applications.MobileNetV2, 2.0, -1.0),
    # EfficientNet normalises [0, 255] inputs itself, in its first layers.
    'efficientnet_b0': _Backbone(keras.applications.EfficientNetB0, 255.0, 0.0),
}
NAMES: Tuple[str, ...] = tuple(_BACKBONES)


def _weights(path: str):
  if not path:
    return None
  if not os.path.isfile(path):
    raise ValueError(f'backbone weights file {path!r} does not exist; give the path '
                     f'of a Keras .h5 weights file of the backbone without its top, '
                     f'or no path to start from random weights')
  return path


def build_backbone_classifier(config: configs.ModelConfig, num_classes: int,
                              class_output: str) -> keras.Model:
  """Grey image -> backbone feature map -> pooled -> dropout -> softmax.

  The backbone stays a nested model whose output is its last feature map, so
  Grad-CAM (models/grad_cam.py) finds that map as the deepest spatial layer.
  """
  backbone = _BACKBONES[config.name]
  size = config.image_size
  inputs = keras.Input((size, size, 1), name=features.IMAGE_XF)
  rgb = layers.Concatenate(name='grey_to_rgb')([inputs, inputs, inputs])
  scaled = layers.Rescaling(backbone.scale, offset=backbone.offset,
                            name='backbone_input_range')(rgb)
  feature_map = backbone.application(
      include_top=False, weights=_weights(config.backbone_weights),
      input_shape=(size, size, 3), pooling=None)(scaled)
  pooled = layers.GlobalAveragePooling2D(name='pool')(feature_map)
  pooled = layers.Dropout(config.dropout, name='dropout')(pooled)
  outputs = layers.Dense(num_classes, activation='softmax', name=class_output)(pooled)
  return keras.Model(inputs, outputs, name=config.name)


def build_efficientnet_lite0_classifier(config: configs.ModelConfig, num_classes: int,
                                        class_output: str) -> keras.Model:
  """Grey image -> ImageNet EfficientNet-Lite0 -> pooled -> dropout -> softmax.

  The backbone takes RGB in [0, 255] and normalises it itself; as above, it
  stays a nested model whose output is its last feature map, for Grad-CAM.
  """
  size = config.image_size
  inputs = keras.Input((size, size, 1), name=features.IMAGE_XF)
  rgb = layers.Concatenate(name='grey_to_rgb')([inputs, inputs, inputs])
  scaled = layers.Rescaling(255.0, name='backbone_input_range')(rgb)
  feature_map = efficientnet_lite.build_imagenet_efficientnet_lite0(
      size, include_top=False)(scaled)
  pooled = layers.GlobalAveragePooling2D(name='pool')(feature_map)
  pooled = layers.Dropout(config.dropout, name='dropout')(pooled)
  outputs = layers.Dense(num_classes, activation='softmax', name=class_output)(pooled)
  return keras.Model(inputs, outputs, name=config.name)
