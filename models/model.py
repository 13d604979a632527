"""The Keras networks trained from scratch: the seed notebook's CNN and
busi_net, the fast family (lesion_net, the default, is in models/lesion_net.py;
models/registry.py says which family is which).

All take the transformed image (`image_xf`, float32 [size, size, 1] in [0, 1])
and end in a softmax over `features.CLASS_NAMES`. busi_net also predicts the
lesion mask during training: on a few hundred images, being told where the
lesion is teaches the encoder far more than the class label alone. Only the
classification output is exported for serving.
"""

from typing import Tuple

import tf_keras as keras
from tf_keras import layers

from contracts import configs
from contracts import features

CLASS_OUTPUT = 'class_probs'
MASK_OUTPUT = 'mask_probs'

_STAGE_FILTERS = (32, 64, 128, 192)


def build_seed_cnn(config: configs.ModelConfig, num_classes: int) -> keras.Model:
  """The seed notebook's CNN, layer for layer.

  The notebook's `Rescaling(1/255)` is kept; since Transform already scales
  intensities to [0, 1], it rescales by 1. Augmentation lives in the model, as in
  the notebook; Keras applies it only when training.
  """
  size = config.image_size
  inputs = keras.Input((size, size, 1), name=features.IMAGE_XF)
  x = keras.Sequential([
      layers.RandomFlip('horizontal'),
      layers.RandomRotation(0.1),
      layers.RandomZoom(0.1),
  ], name='augmentation')(inputs)
  x = layers.Rescaling(1.0, name='rescaling')(x)
  for filters in (16, 32, 64):
    x = layers.Conv2D(filters, 3, padding='same', activation='relu',
                      name=f'conv_{filters}')(x)
    x = layers.MaxPooling2D(name=f'pool_{filters}')(x)
  x = layers.Dropout(0.2, name='dropout')(x)
  x = layers.Flatten(name='flatten')(x)
  x = layers.Dense(128, activation='relu', name='dense_128')(x)
  outputs = layers.Dense(num_classes, activation='softmax', name=CLASS_OUTPUT)(x)
  return keras.Model(inputs, outputs, name='seed_cnn')


def _conv_bn(x, filters: int, stride: int, name: str, relu: bool = True):
  x = layers.Conv2D(filters, 3, strides=stride, padding='same', use_bias=False,
                    name=f'{name}_conv')(x)
  # Momentum 0.9: with ~20 steps an epoch, the default 0.99 leaves the moving
  # statistics far from the weights' and eval accuracy swings between epochs.
  x = layers.BatchNormalization(momentum=0.9, name=f'{name}_bn')(x)
  return layers.Activation('relu', name=f'{name}_relu')(x) if relu else x


def _residual_block(x, filters: int, stride: int, name: str):
  shortcut = x
  y = _conv_bn(x, filters, stride, f'{name}_a')
  y = _conv_bn(y, filters, 1, f'{name}_b', relu=False)
  if stride != 1 or shortcut.shape[-1] != filters:
    shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                             name=f'{name}_proj_conv')(shortcut)
    shortcut = layers.BatchNormalization(momentum=0.9,
                                         name=f'{name}_proj_bn')(shortcut)
  y = layers.Add(name=f'{name}_add')([shortcut, y])
  return layers.Activation('relu', name=f'{name}_out')(y)


def build_busi_net(config: configs.ModelConfig,
                   num_classes: int) -> Tuple[keras.Model, keras.Model]:
  """Residual encoder with a class head and an auxiliary lesion-mask head.

  Every stage halves the resolution in its first block, so a 128-pixel image
  costs about 0.12 GMACs, a quarter of a design whose first stage keeps the
  stem's resolution: on two CPU cores, the many epochs a from-scratch network
  needs fit in the training budget.

  Returns (training model with both outputs, serving model with the class
  output only); they share every layer.
  """
  size = config.image_size
  inputs = keras.Input((size, size, 1), name=features.IMAGE_XF)
  x = _conv_bn(inputs, 16, 2, 'stem')
  skips = []
  for stage, filters in enumerate(_STAGE_FILTERS):
    x = _residual_block(x, filters, 2, f'stage{stage}_block0')
    x = _residual_block(x, filters, 1, f'stage{stage}_block1')
    skips.append(x)
  pooled = layers.GlobalAveragePooling2D(name='pool')(x)
  pooled = layers.Dropout(config.dropout, name='dropout')(pooled)
  class_probs = layers.Dense(num_classes, activation='softmax',
                             name=CLASS_OUTPUT)(pooled)
  mask_probs = _mask_head(skips, size)
  training_model = keras.Model(inputs, [class_probs, mask_probs], name='busi_net')
  serving_model = keras.Model(inputs, class_probs, name='busi_net_classifier')
  return training_model, serving_model


def _mask_head(skips, size: int):
  """Light decoder: fuse the last two stages, predict the mask, upsample."""
  deep = layers.Conv2D(32, 1, name='mask_deep_proj')(skips[-1])
  deep = layers.UpSampling2D(2, interpolation='bilinear', name='mask_deep_up')(deep)
  mid = layers.Conv2D(32, 1, name='mask_mid_proj')(skips[-2])
  x = layers.Add(name='mask_fuse')([deep, mid])
  x = layers.Activation('relu', name='mask_fuse_relu')(x)
  x = layers.Conv2D(1, 3, padding='same', name='mask_logits')(x)
  x = layers.Resizing(size, size, interpolation='bilinear', name='mask_resize')(x)
  return layers.Activation('sigmoid', name=MASK_OUTPUT)(x)
