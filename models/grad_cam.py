"""Grad-CAM: where in the image the network found evidence for a class.

A clinician trusts a malignant call more when the heatmap sits on the lesion
than when it sits on a caliper mark or the scanner's text overlay. Grad-CAM
(Selvaraju et al., 2017) weighs the last convolutional feature maps by how
much the class score rises with each, so it needs the Keras model itself, not
only the exported signatures: `load_serving_model` rebuilds it from the
Trainer's SavedModel.
"""

import os
from typing import Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras

from contracts import configs
from models import registry


def last_feature_map_layer(model: keras.Model) -> keras.layers.Layer:
  """The deepest layer with a spatial output: the finest map the class head reads."""
  for layer in reversed(model.layers):
    shape = layer.output_shape
    if isinstance(shape, tuple) and len(shape) == 4 and not isinstance(
        layer, (keras.layers.InputLayer, keras.Sequential)):
      return layer
  raise ValueError(f'Model {model.name!r} has no layer with a [batch, h, w, c] output.')


def explained_layer(model: keras.Model, model_name: str) -> Optional[keras.layers.Layer]:
  """The layer Grad-CAM explains for the family `model_name`, as its spec names it.

  None lets `grad_cam` take the deepest spatial layer. lesion_net names its
  whole-image feature map: its deepest spatial layers read the lesion crop,
  whose coordinates are not the image's.
  """
  layer_name = registry.spec(model_name).explained_layer
  return model.get_layer(layer_name) if layer_name else None


def grad_cam(model: keras.Model, images: np.ndarray, class_indices: np.ndarray,
             layer: Optional[keras.layers.Layer] = None) -> np.ndarray:
  """Heatmaps in [0, 1] at the input's size, one per image, for the given classes.

  `images` is [N, H, W, C] as the model takes them; `class_indices` [N] says
  which class each heatmap explains (e.g. the predicted one). A heatmap that is
  zero everywhere means no feature map raised that class's score.
  """
  layer = layer or last_feature_map_layer(model)
  # The layer's last call is its call in `model`: a nested backbone's `output`
  # would be the tensor of its own inner graph instead.
  probe = keras.Model(model.inputs, [layer.get_output_at(-1), model.output])
  images = tf.convert_to_tensor(images, tf.float32)
  with tf.GradientTape() as tape:
    feature_maps, scores = probe(images, training=False)
    chosen = tf.gather(scores, tf.constant(class_indices, tf.int32), batch_dims=1)
  gradients = tape.gradient(chosen, feature_maps)
  channel_weights = tf.reduce_mean(gradients, axis=[1, 2], keepdims=True)
  heatmaps = tf.nn.relu(tf.reduce_sum(channel_weights * feature_maps, axis=-1,
                                      keepdims=True))
  heatmaps = tf.image.resize(heatmaps, tf.shape(images)[1:3], method='bilinear')
  peak = tf.reduce_max(heatmaps, axis=[1, 2, 3], keepdims=True)
  return tf.squeeze(tf.math.divide_no_nan(heatmaps, peak), -1).numpy()


def peak_inside(heatmap: np.ndarray, mask: np.ndarray) -> bool:
  """The pointing game's hit: the heatmap's maximum lies on the mask.

  An all-zero heatmap (no evidence anywhere) has no peak and never hits.
  """
  if not heatmap.max() > 0:
    return False
  row, col = np.unravel_index(np.argmax(heatmap), heatmap.shape)
  return bool(mask[row, col])


def load_serving_model(saved_model_dir: str, model_config: configs.ModelConfig,
                       num_classes: int) -> keras.Model:
  """The classifier the Trainer exported, as a Keras model with its layers.

  `tf.saved_model.load` gives back the export's functions and variables but not
  the intermediate layers Grad-CAM reads, so the network is rebuilt from its
  configuration and the exported variables are restored into it by name path
  (`models/signatures.py` saves the network as the module's `model`).

  Raises ValueError when the export's variables do not fit the network that
  the current model code builds, i.e. the model code has changed since.
  """
  _, serving_model = registry.build_model(model_config, num_classes)
  checkpoint = tf.train.Checkpoint(model=serving_model)
  try:
    status = checkpoint.read(os.path.join(saved_model_dir, 'variables', 'variables'))
    status.expect_partial().assert_existing_objects_matched()
  except (ValueError, AssertionError) as e:
    raise ValueError(f'{saved_model_dir} does not fit the {model_config.name} that '
                     f'model code builds now (the code changed since it was '
                     f'trained?): {str(e).splitlines()[0]}') from None
  return serving_model
