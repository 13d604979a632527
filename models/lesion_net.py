"""A classifier that finds the lesion, then looks at it closely.

On BUSI a network that sees only the whole scan learns the hospital's
scanner and annotations as much as the lesion; the same ImageNet features
computed on a crop around the lesion separate benign from malignant far
better, at BUSI and at other sites (bench/README.md, ../shared/BASELINES.md).
This model makes that crop itself:

1. an ImageNet EfficientNet-Lite0 (models/efficientnet_lite.py) reads the
   whole image, downsized to the context size;
2. a light decoder on its stride-8, -16 and -32 feature maps predicts the
   lesion mask, supervised by the annotated masks;
3. the mask's soft box, a square around the predicted lesion with a margin,
   is resampled from the input image at the input's full resolution (twice
   the context's, as registered), and the same backbone reads that crop;
4. the class head reads the whole-image features (context), the crop's
   features (the lesion) and how sure the mask is that there is a lesion.

Normal scans have no lesion: the less lesion the mask sees, the more the box
widens to the whole image, so such a scan's "crop" is the scan itself and
needs no mask at serving time. The box is computed from the predicted mask
at training time too, so the class head learns on the crops it will get in
serving; it does not pass gradients back into the mask, which only the mask
loss trains, so the class loss cannot move the box towards site cues.

The model takes the transformed image the other networks take (`image_xf`,
float32 [size, size, 1] in [0, 1]) and repeats and scales it for the
backbone itself.
"""

import dataclasses
from typing import Optional

import tensorflow as tf
import tf_keras as keras
from tf_keras import layers

from contracts import features
from models import efficientnet_lite

# The crop is this many times the predicted lesion's extent, so the class
# head sees the lesion's margin and the tissue around it.
CROP_MARGIN = 1.5
# The smallest crop, as a fraction of the image side: a tiny false positive
# must not be blown up into the whole view.
MIN_CROP_FRACTION = 0.25
LESION_BOX = 'lesion_box'
LESION_PRESENCE = 'lesion_presence'
# The whole-image stride-32 feature map the class head pools: the map
# Grad-CAM explains, in image coordinates (the crop pass's maps are in the
# crop's).
CONTEXT_FEATURE_MAP = 'context_feature_map'
# The whole image's pooled features, and the class head's input: those, the
# lesion crop's pooled features and the lesion presence, concatenated.
CONTEXT_POOL = 'context_pool'
CLASS_HEAD_INPUT = 'context_lesion_presence'

# The registry's cap on the whole-image pass's side (models/registry.py).
MAX_CONTEXT_SIZE = 128

_DECODER_FILTERS = 64
BACKBONE_STRIDE = 32


@dataclasses.dataclass
class LesionNet:
  """The three views of one network; they share every layer.

  training: image_xf -> [class probabilities [N, classes], mask [N, size, size, 1]]
  serving: image_xf -> class probabilities [N, classes]
  localiser: image_xf -> {LESION_BOX: [N, 4] as (y0, x0, y1, x1) in image
      fractions (may reach past the image; outside is black),
      LESION_PRESENCE: [N, 1] in [0, 1], mask output: [N, size, size, 1]}
  """
  training: keras.Model
  serving: keras.Model
  localiser: keras.Model


class SoftLesionBox(layers.Layer):
  """Mask probabilities [N, h, w, 1] -> (square box [N, 4], presence [N, 1]).

  The box's centre is the mask's centre of mass; its side is `margin` times
  the larger of the extents a uniform box of the mask's spread would have
  (sqrt(12) standard deviations), at least `min_fraction` of the image, so the
  lesion keeps its aspect ratio once resampled. Presence is the mask's peak
  probability; the box is blended towards the whole image as it falls.
  """

  def __init__(self, margin: float = CROP_MARGIN,
               min_fraction: float = MIN_CROP_FRACTION, **kwargs):
    super().__init__(**kwargs)
    self.margin = margin
    self.min_fraction = min_fraction

  def call(self, mask):
    mask = tf.stop_gradient(mask[..., 0])
    height, width = tf.shape(mask)[1], tf.shape(mask)[2]
    ys = (tf.range(height, dtype=mask.dtype) + 0.5) / tf.cast(height, mask.dtype)
    xs = (tf.range(width, dtype=mask.dtype) + 0.5) / tf.cast(width, mask.dtype)
    ys, xs = ys[tf.newaxis, :, tf.newaxis], xs[tf.newaxis, tf.newaxis, :]
    mass = tf.reduce_sum(mask, axis=[1, 2]) + 1e-6
    centre_y = tf.reduce_sum(mask * ys, axis=[1, 2]) / mass
    centre_x = tf.reduce_sum(mask * xs, axis=[1, 2]) / mass
    spread_y = tf.reduce_sum(mask * tf.square(ys - centre_y[:, None, None]), axis=[1, 2]) / mass
    spread_x = tf.reduce_sum(mask * tf.square(xs - centre_x[:, None, None]), axis=[1, 2]) / mass
    extent = tf.sqrt(12.0 * tf.maximum(spread_y, spread_x) + 1e-12)
    half = 0.5 * tf.maximum(self.margin * extent, self.min_fraction)
    lesion_box = tf.stack([centre_y - half, centre_x - half,
                           centre_y + half, centre_x + half], axis=1)
    presence = tf.reduce_max(mask, axis=[1, 2])[:, tf.newaxis]
    whole_image = tf.constant([[0.0, 0.0, 1.0, 1.0]], mask.dtype)
    box = presence * lesion_box + (1.0 - presence) * whole_image
    return box, presence

  def get_config(self):
    return {**super().get_config(), 'margin': self.margin,
            'min_fraction': self.min_fraction}


class LesionCrop(layers.Layer):
  """(image [N, H, W, C], box [N, 4]) -> the boxes resampled to `size` square.

  The box is in fractions of the image's edges (0: its top or left edge, 1:
  its bottom or right one). Each output pixel samples the image bilinearly at
  its centre's place in the box, and is 0 where that place lies past the
  image's outermost pixel centres: what `tf.image.crop_and_resize` computes.
  It is written as a per-image affine resampling instead, because Grappler's
  cost estimator fails on CropAndResize with a batch of unknown size (every
  serving batch) and logs the whole op each time a graph is built.
  The whole-image box at the image's own size is then the image itself.
  """

  def __init__(self, size: int, **kwargs):
    super().__init__(**kwargs)
    self.size = size

  def call(self, inputs):
    image, box = inputs
    image_size = tf.cast(tf.shape(image)[1:3], box.dtype)
    start, end = box[:, :2], box[:, 2:]
    inset = 0.5 * (end - start) / self.size
    # Pixel coordinates (a pixel's centre is its index) of the first and
    # last sample along y and x, and the step between samples.
    first = (start + inset) * image_size - 0.5
    step = ((end - inset) * image_size - 0.5 - first) / max(self.size - 1, 1)
    zero = tf.zeros_like(step[:, 0])
    # Output (x, y) -> input (step_x * x + first_x, step_y * y + first_y).
    affine = tf.stack([step[:, 1], zero, first[:, 1], zero, step[:, 0], first[:, 0],
                       zero, zero], axis=1)
    crop = tf.raw_ops.ImageProjectiveTransformV3(
        images=image, transforms=affine, output_shape=[self.size, self.size],
        fill_value=0.0, interpolation='BILINEAR', fill_mode='CONSTANT')
    at = first[:, tf.newaxis, :] + (tf.range(self.size, dtype=box.dtype)[:, tf.newaxis]
                                    * step[:, tf.newaxis, :])
    inside = tf.cast((at >= 0.0) & (at <= image_size - 1.0), crop.dtype)
    return crop * inside[:, :, tf.newaxis, :1] * inside[:, tf.newaxis, :, 1:]

  def get_config(self):
    return {**super().get_config(), 'size': self.size}


def _backbone(imagenet_weights: bool) -> keras.Model:
  """Lite0 of any input size, returning its stride-8, -16 and -32 maps."""
  build = (efficientnet_lite.build_imagenet_efficientnet_lite0 if imagenet_weights
           else efficientnet_lite.build_efficientnet_lite0)
  return efficientnet_lite.feature_extractor(build(None, include_top=False))


def _to_backbone_range(grey, name: str):
  """[0, 1] grey -> the RGB [0, 255] the ImageNet weights saw."""
  rgb = layers.Concatenate(name=f'{name}_rgb')([grey, grey, grey])
  return layers.Rescaling(255.0, name=f'{name}_0_255')(rgb)


def _mask_decoder(stride8, stride16, stride32):
  """Feature-pyramid decoder: mask logits at stride 8."""
  x = layers.Conv2D(_DECODER_FILTERS, 1, name='mask_stride32_proj')(stride32)
  x = layers.UpSampling2D(2, interpolation='bilinear', name='mask_stride32_up')(x)
  x = layers.Add(name='mask_stride16_fuse')(
      [x, layers.Conv2D(_DECODER_FILTERS, 1, name='mask_stride16_proj')(stride16)])
  x = layers.ReLU(name='mask_stride16_relu')(x)
  x = layers.UpSampling2D(2, interpolation='bilinear', name='mask_stride16_up')(x)
  x = layers.Add(name='mask_stride8_fuse')(
      [x, layers.Conv2D(_DECODER_FILTERS, 1, name='mask_stride8_proj')(stride8)])
  x = layers.ReLU(name='mask_stride8_relu')(x)
  x = layers.Conv2D(_DECODER_FILTERS, 3, padding='same', activation='relu',
                    name='mask_refine')(x)
  return layers.Conv2D(1, 1, name='mask_logits')(x)


def build_lesion_net(image_size: int, num_classes: int, class_output: str,
                     mask_output: str, context_size: Optional[int] = None,
                     crop_size: Optional[int] = None,
                     dropout: float = 0.3, imagenet_weights: bool = True,
                     name: str = 'lesion_net') -> LesionNet:
  """The lesion-focused classifier; see the module docstring.

  `class_output` and `mask_output` name the two outputs the training loop
  fits. The whole-image pass and the mask read the input resized to
  `context_size` (default: `image_size`); the lesion crop is resampled from
  the input at its own, finer, resolution to `crop_size` (default:
  `context_size`), so a larger input adds detail to the lesion alone.
  `imagenet_weights` starts the backbone from the installed ImageNet weights,
  else from random ones.
  """
  context_size = context_size or image_size
  crop_size = crop_size or context_size
  for what, size in (('context size', context_size), ('crop size', crop_size)):
    if size % BACKBONE_STRIDE:
      raise ValueError(f'lesion_net needs a {what} divisible by '
                       f'{BACKBONE_STRIDE}, got {size}')
  if context_size > image_size:
    raise ValueError(f'lesion_net: the context size ({context_size}) cannot '
                     f'exceed the image size ({image_size})')
  backbone = _backbone(imagenet_weights)
  inputs = keras.Input((image_size, image_size, 1), name=features.IMAGE_XF)
  context_image = inputs
  if context_size != image_size:
    context_image = layers.Resizing(context_size, context_size, interpolation='area',
                                    name='context_resize')(inputs)
  stride8, stride16, stride32 = backbone(_to_backbone_range(context_image, 'image'))

  mask_logits = _mask_decoder(stride8, stride16, stride32)
  coarse_mask = layers.Activation('sigmoid', name='mask_coarse')(mask_logits)
  mask = layers.Resizing(image_size, image_size, interpolation='bilinear',
                         name='mask_resize')(mask_logits)
  mask = layers.Activation('sigmoid', name=mask_output)(mask)

  box, presence = SoftLesionBox(name='soft_lesion_box')(coarse_mask)
  box = layers.Activation('linear', name=LESION_BOX)(box)
  presence = layers.Activation('linear', name=LESION_PRESENCE)(presence)
  crop = LesionCrop(crop_size, name='lesion_crop')([inputs, box])
  _, _, crop_stride32 = backbone(_to_backbone_range(crop, 'crop'))

  context = layers.Activation('linear', name=CONTEXT_FEATURE_MAP)(stride32)
  context = layers.GlobalAveragePooling2D(name=CONTEXT_POOL)(context)
  lesion = layers.GlobalAveragePooling2D(name='lesion_pool')(crop_stride32)
  x = layers.Concatenate(name=CLASS_HEAD_INPUT)([context, lesion, presence])
  x = layers.Dropout(dropout, name='dropout')(x)
  class_probs = layers.Dense(num_classes, activation='softmax', name=class_output)(x)

  return LesionNet(
      training=keras.Model(inputs, [class_probs, mask], name=name),
      serving=keras.Model(inputs, class_probs, name=f'{name}_classifier'),
      localiser=keras.Model(inputs, {LESION_BOX: box, LESION_PRESENCE: presence,
                                     mask_output: mask}, name=f'{name}_localiser'))
