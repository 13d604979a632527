"""Serving signatures: raw image bytes in, calibrated scores and a clinical decision out.

Both signatures run the Transform graph (`tft_layer`) before the network, so
TF Serving clients send files, not tensors, and training and serving can never
preprocess differently:

* `serving_default` takes serialized tf.Examples (the `image` feature), as
  TFMA and TF Serving's Predict API send them (not Classify: see docs/serving.md);
* `serving_images` takes encoded PNG/JPEG bytes (`{"b64": ...}` over REST) and
  also returns the decided class as `label`.

Both return `scores` (float32 [N, 3], calibrated probabilities, see
models/inference.py) and `classes` (string [N, 3], the class names in the order
of `scores`), the outputs TFMA and TF Serving look for, and the decision at the
malignant operating point the Trainer chose (models/operating_point.py):
`decision` (string [N]: `refer` when the malignant score reaches the
threshold, else the more probable of the other classes) and
`malignant_threshold` (float32 [N], the threshold it used), and `not_sure`
(bool [N], models/not_sure.py: read by a radiologist whatever the decision;
a separate flag, so `decision` keeps the operating point's meaning and the
rates it was chosen for). A payload that is not a readable PNG/JPEG fails its
request with InvalidArgumentError; one whose header declares too many pixels
fails before anything is decoded (models/preprocessing.py). An empty batch
gets empty outputs. Every export carries TF Serving's warm-up requests for
both signatures (models/warmup.py) and the operating point's record
(`assets.extra/operating_point.json`). docs/serving.md is the client-facing
version of this contract.
"""

from typing import Sequence

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

import models
from contracts import features
from contracts import operating_point as op
from contracts import serving
from models import inference
from models import not_sure
from models import operating_point
from models import warmup

# The path of `_ServingModule.malignant_threshold` in the SavedModel's object graph.
THRESHOLD_VARIABLE = 'malignant_threshold'


class _ServingModule(tf.Module):
  """Holds the network, the transform layer, the class names and the cut-offs for export."""

  def __init__(self, model: keras.Model, tf_transform_output: tft.TFTransformOutput,
               class_names: Sequence[str], temperature: float, malignant_threshold: float,
               not_sure_cutoff: float):
    super().__init__()
    self.model = model
    self._temperature = temperature
    self._malignant_index = operating_point.malignant_index(class_names)
    # A variable, not a constant of the graph, so that a copy adapted to a
    # site (serving/site_adaptation.py) decides at that site's threshold.
    self.malignant_threshold = tf.Variable(float(malignant_threshold), trainable=False,
                                           name=THRESHOLD_VARIABLE)
    self._not_sure_cutoff = float(not_sure_cutoff)
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
    return {serving.SCORES_OUTPUT: scores, serving.CLASSES_OUTPUT: classes,
            serving.NOT_SURE_OUTPUT: not_sure.flag(scores, self._not_sure_cutoff),
            **self._decisions(scores)}

  def _decisions(self, scores: tf.Tensor):
    """`refer` at or above the malignant threshold, else the likelier other class.

    Also the class each decision stands for (`malignant` for `refer`), which
    serving_images returns as `label`.
    """
    malignant = scores[:, self._malignant_index]
    # Probabilities are at most 1, so the malignant column can never win here.
    others = scores - 2.0 * tf.one_hot(self._malignant_index, tf.shape(scores)[1])
    other_class = tf.gather(self.class_names, tf.argmax(others, axis=1))
    threshold = tf.convert_to_tensor(self.malignant_threshold)
    refer = malignant >= threshold
    return {
        serving.DECISION_OUTPUT: tf.where(refer, op.REFER_DECISION, other_class),
        serving.THRESHOLD_OUTPUT: tf.fill(tf.shape(malignant), threshold),
        serving.LABEL_OUTPUT: tf.where(refer, self.class_names[self._malignant_index],
                                       other_class)}

  def _empty_outputs(self):
    count = tf.size(self.class_names)
    return {serving.SCORES_OUTPUT: tf.zeros([0, count], tf.float32),
            serving.CLASSES_OUTPUT: tf.fill([0, count], ''),
            serving.DECISION_OUTPUT: tf.zeros([0], tf.string),
            serving.THRESHOLD_OUTPUT: tf.zeros([0], tf.float32),
            serving.NOT_SURE_OUTPUT: tf.zeros([0], tf.bool),
            serving.LABEL_OUTPUT: tf.zeros([0], tf.string)}

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name=serving.EXAMPLES_INPUT)])
  def serve_examples(self, serialized_examples):
    parsed = tf.io.parse_example(serialized_examples, self._image_spec)
    outputs = self.predict(parsed[features.IMAGE_KEY])
    del outputs[serving.LABEL_OUTPUT]
    return outputs

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name=serving.IMAGE_BYTES_INPUT)])
  def serve_images(self, image_bytes):
    return self.predict(image_bytes)


def export_serving_model(model: keras.Model,
                         tf_transform_output: tft.TFTransformOutput,
                         class_names: Sequence[str], export_dir: str,
                         temperature: float,
                         malignant_point: op.OperatingPoint,
                         not_sure_cutoff: float) -> None:
  """Writes the SavedModel that the Pusher copies and TF Serving loads, with warm-up
  and the operating point's record.

  `temperature` and the "not sure" cut-off (models/not_sure.py) are baked into
  the graph as constants and the operating point's threshold is a variable
  beside the network's (`THRESHOLD_VARIABLE`), so the served scores are
  `inference.class_scores` of the network and the decision and the flag are the
  ones they were chosen for.
  """
  models.configure_tensorflow()
  module = _ServingModule(model, tf_transform_output, class_names, temperature,
                          malignant_point.threshold, not_sure_cutoff)
  tf.saved_model.save(module, export_dir, signatures={
      serving.SERVING_DEFAULT: module.serve_examples,
      serving.SERVING_IMAGES: module.serve_images,
  })
  warmup.write_warmup_file(export_dir, warmup.warmup_requests())
  operating_point.write(export_dir, malignant_point)
