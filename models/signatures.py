"""Serving signatures: raw image bytes in, class probabilities out.

Both signatures run the Transform graph (`tft_layer`) before the network, so
TF Serving clients send files, not tensors, and training and serving can never
preprocess differently:

* `serving_default` takes serialized tf.Examples (the `image` feature), as
  TFMA and TF Serving's Predict API send them (not Classify: see docs/serving.md);
* `serving_images` takes encoded PNG/JPEG bytes (`{"b64": ...}` over REST) and
  also returns the top class as `label`.

Both return `scores` (float32 [N, 3], calibrated probabilities, see
models/inference.py) and `classes` (string [N, 3], the class names in the order
of `scores`), the outputs TFMA and TF Serving look for. A payload that is not a readable PNG/JPEG fails its request
with InvalidArgumentError; one whose header declares too many pixels fails before
anything is decoded (models/preprocessing.py).
An empty batch gets empty outputs. Every export carries TF Serving's warm-up
requests for both signatures (models/warmup.py).
docs/serving.md is the client-facing version of this contract.
"""

from typing import Sequence

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

import models
from contracts import features
from contracts import serving
from models import inference
from models import warmup

class _ServingModule(tf.Module):
  """Holds the network, the transform layer and the class names for export."""

  def __init__(self, model: keras.Model, tf_transform_output: tft.TFTransformOutput,
               class_names: Sequence[str], temperature: float):
    super().__init__()
    self.model = model
    self._temperature = temperature
    self.tft_layer = tf_transform_output.transform_features_layer()
    self.class_names = tf.constant(list(class_names))
    self._image_spec = {
        features.IMAGE_KEY: tf_transform_output.raw_feature_spec()[features.IMAGE_KEY]}

  def predict(self, encoded_images: tf.Tensor):
    """Scores and class names; an empty batch gets empty outputs, not a shape error."""
    return tf.cond(tf.size(encoded_images) > 0,
                   lambda: self._predict(encoded_images),
                   lambda: self._empty_outputs())

  def _predict(self, encoded_images: tf.Tensor):
    transformed = self.tft_layer({features.IMAGE_KEY: tf.reshape(encoded_images, [-1, 1])})
    scores = inference.class_scores(self.model, transformed[features.IMAGE_XF],
                                    self._temperature)
    classes = tf.tile(self.class_names[tf.newaxis, :], [tf.shape(scores)[0], 1])
    return {serving.SCORES_OUTPUT: scores, serving.CLASSES_OUTPUT: classes}

  def _empty_outputs(self):
    count = tf.size(self.class_names)
    return {serving.SCORES_OUTPUT: tf.zeros([0, count], tf.float32),
            serving.CLASSES_OUTPUT: tf.fill([0, count], '')}

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name=serving.EXAMPLES_INPUT)])
  def serve_examples(self, serialized_examples):
    parsed = tf.io.parse_example(serialized_examples, self._image_spec)
    return self.predict(parsed[features.IMAGE_KEY])

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name=serving.IMAGE_BYTES_INPUT)])
  def serve_images(self, image_bytes):
    outputs = self.predict(image_bytes)
    outputs[serving.LABEL_OUTPUT] = tf.gather(
        self.class_names, tf.argmax(outputs[serving.SCORES_OUTPUT], axis=1))
    return outputs


def export_serving_model(model: keras.Model,
                         tf_transform_output: tft.TFTransformOutput,
                         class_names: Sequence[str], export_dir: str,
                         temperature: float = 1.0) -> None:
  """Writes the SavedModel that the Pusher copies and TF Serving loads, with warm-up.

  `temperature` is baked into the graph as a constant, so the served scores
  are `inference.class_scores` of the network.
  """
  models.configure_tensorflow()
  module = _ServingModule(model, tf_transform_output, class_names, temperature)
  tf.saved_model.save(module, export_dir, signatures={
      serving.SERVING_DEFAULT: module.serve_examples,
      serving.SERVING_IMAGES: module.serve_images,
  })
  warmup.write_warmup_file(export_dir, warmup.warmup_requests())
