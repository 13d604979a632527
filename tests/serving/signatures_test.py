"""The serving contract, checked on a SavedModel loaded as TF Serving loads it."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from contracts import features
from contracts import serving
from models import inference
from models import operating_point
from models import signatures
from models import warmup
from tests.fixtures import exported_model
from tests.serving import payloads

_ENCODINGS = {
    'png_gray': lambda pixels: payloads.encode(pixels),
    'png_rgb': lambda pixels: payloads.encode(pixels, mode='RGB'),
    'png_rgba': lambda pixels: payloads.encode(pixels, mode='RGBA'),
    'png_16bit': lambda pixels: payloads.encode(pixels, mode='I;16'),
    'jpeg': lambda pixels: payloads.encode(pixels, 'JPEG'),
}


def _example(image: bytes) -> bytes:
  return tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
  })).SerializeToString()


def _images(count: int):
  return [payloads.encode(payloads.scan(seed)) for seed in range(count)]


def test_signatures_declare_the_contract(served):
  images = served.signatures[serving.SERVING_IMAGES]
  default = served.signatures[serving.SERVING_DEFAULT]
  assert images.structured_input_signature[1] == {
      'image_bytes': tf.TensorSpec([None], tf.string, name='image_bytes')}
  assert default.structured_input_signature[1] == {
      'examples': tf.TensorSpec([None], tf.string, name='examples')}
  assert {name: (spec.dtype, spec.shape.as_list())
          for name, spec in images.structured_outputs.items()} == {
              'scores': (tf.float32, [None, 3]),
              'classes': (tf.string, [None, 3]),
              'decision': (tf.string, [None]),
              'malignant_threshold': (tf.float32, [None]),
              'not_sure': (tf.bool, [None]),
              'label': (tf.string, [None])}
  assert {name: (spec.dtype, spec.shape.as_list())
          for name, spec in default.structured_outputs.items()} == {
              'scores': (tf.float32, [None, 3]),
              'classes': (tf.string, [None, 3]),
              'decision': (tf.string, [None]),
              'malignant_threshold': (tf.float32, [None]),
              'not_sure': (tf.bool, [None])}


def _expected_decisions(scores: np.ndarray, threshold: float):
  """The contract in plain numpy: refer at the threshold, else the likelier other class."""
  malignant = features.CLASS_NAMES.index(features.MALIGNANT_CLASS)
  decisions = []
  for row in scores:
    if row[malignant] >= threshold:
      decisions.append('refer')
    else:
      others = [i for i in range(len(row)) if i != malignant]
      decisions.append(features.CLASS_NAMES[max(others, key=lambda i: row[i])])
  return decisions


def test_serving_images_returns_probabilities_classes_decision_and_label(exported, served):
  outputs = served.signatures[serving.SERVING_IMAGES](
      image_bytes=tf.constant(_images(4)))
  scores = outputs['scores'].numpy()
  assert scores.shape == (4, 3)
  np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
  assert outputs['classes'].numpy().astype(str).tolist() == [list(features.CLASS_NAMES)] * 4
  threshold = exported.operating_point.threshold
  np.testing.assert_allclose(outputs['malignant_threshold'], [threshold] * 4)
  decisions = outputs['decision'].numpy().astype(str).tolist()
  assert decisions == _expected_decisions(scores, threshold)
  assert outputs['label'].numpy().astype(str).tolist() == [
      features.MALIGNANT_CLASS if d == 'refer' else d for d in decisions]
  np.testing.assert_array_equal(outputs['not_sure'],
                                1.0 - scores.max(axis=1) >= exported.not_sure_cutoff)


def test_not_sure_flags_the_scans_at_or_above_the_cutoff_baked_in(exported, served, tmp_path):
  """A cut-off inside the scans' spread flags some and not others, in both signatures."""
  images = [payloads.encode(payloads.scan(seed, label))
            for seed, label in enumerate(features.CLASS_NAMES * 3)]
  scores = served.signatures[serving.SERVING_IMAGES](
      image_bytes=tf.constant(images))['scores'].numpy()
  unsure = 1.0 - scores.max(axis=1)
  cutoff = float(np.median(unsure))
  export_dir = str(tmp_path / 'saved_model')
  signatures.export_serving_model(exported.keras_model, exported.tf_transform_output,
                                  features.CLASS_NAMES, export_dir, exported.temperature,
                                  exported.operating_point, cutoff)
  reloaded = tf.saved_model.load(export_dir)
  by_images = reloaded.signatures[serving.SERVING_IMAGES](image_bytes=tf.constant(images))
  by_examples = reloaded.signatures[serving.SERVING_DEFAULT](
      examples=tf.constant([_example(image) for image in images]))
  expected = unsure >= cutoff
  assert 0 < expected.sum() < len(images)
  np.testing.assert_array_equal(by_images['not_sure'], expected)
  np.testing.assert_array_equal(by_examples['not_sure'], expected)
  # The flag leaves the decision as the operating point makes it.
  np.testing.assert_array_equal(by_images['decision'],
                                served.signatures[serving.SERVING_IMAGES](
                                    image_bytes=tf.constant(images))['decision'])


@pytest.mark.parametrize('threshold', [0.0, 0.3, 0.6, 1.01])
def test_the_decision_follows_the_threshold_baked_in(exported, tmp_path, threshold):
  """Every threshold, from "refer all" to "refer none", gives the contract's decisions."""
  point = dataclasses.replace(exported.operating_point, threshold=threshold)
  export_dir = str(tmp_path / 'saved_model')
  signatures.export_serving_model(exported.keras_model, exported.tf_transform_output,
                                  features.CLASS_NAMES, export_dir, exported.temperature,
                                  point, exported.not_sure_cutoff)
  reloaded = tf.saved_model.load(export_dir)
  assert operating_point.read(export_dir) == point
  images = [payloads.encode(payloads.scan(seed, label))
            for seed, label in enumerate(features.CLASS_NAMES * 2)]
  by_examples = reloaded.signatures[serving.SERVING_DEFAULT](
      examples=tf.constant([_example(image) for image in images]))
  decisions = by_examples['decision'].numpy().astype(str).tolist()
  assert decisions == _expected_decisions(by_examples['scores'].numpy(), threshold)
  if threshold == 0.0:
    assert set(decisions) == {'refer'}
  if threshold > 1.0:
    assert 'refer' not in decisions


def test_the_export_records_the_operating_point_it_serves(exported, served):
  point = operating_point.read(exported.saved_model_dir)
  assert point == exported.operating_point
  outputs = served.signatures[serving.SERVING_DEFAULT](
      examples=tf.constant([_example(_images(1)[0])]))
  assert outputs['malignant_threshold'].numpy()[0] == np.float32(point.threshold)


@pytest.mark.parametrize('encoding', sorted(_ENCODINGS))
def test_both_signatures_give_the_same_scores(served, encoding):
  images = [_ENCODINGS[encoding](payloads.scan(seed, label))
            for seed, label in enumerate(features.CLASS_NAMES)]
  by_bytes = served.signatures[serving.SERVING_IMAGES](
      image_bytes=tf.constant(images))
  by_examples = served.signatures[serving.SERVING_DEFAULT](
      examples=tf.constant([_example(image) for image in images]))
  np.testing.assert_allclose(by_bytes['scores'], by_examples['scores'], atol=1e-6)
  np.testing.assert_array_equal(by_bytes['classes'], by_examples['classes'])
  np.testing.assert_array_equal(by_bytes['decision'], by_examples['decision'])


def test_serving_scores_equal_the_training_path(exported, served):
  """Transform's output fed to the network, as in training, gives the served scores."""
  raw = exported_model.synthetic_raw_examples(3)
  transformed = exported.tf_transform_output.transform_raw_features({
      key: tf.constant([example[key] for example in raw])
      for key in (features.IMAGE_KEY, features.MASK_KEY, features.LABEL_KEY)})
  trained_path = inference.class_scores(
      exported.keras_model, transformed[features.IMAGE_XF], exported.temperature)
  served_scores = served.signatures[serving.SERVING_IMAGES](
      image_bytes=tf.constant([example[features.IMAGE_KEY][0] for example in raw]))
  np.testing.assert_allclose(served_scores['scores'], trained_path, atol=1e-6)


@pytest.mark.parametrize('name,payload,message', payloads.bad_payloads(),
                         ids=[bad[0] for bad in payloads.bad_payloads()])
def test_bad_payload_fails_its_request_with_a_message(served, name, payload, message):
  del name  # only names the test case
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    served.signatures[serving.SERVING_IMAGES](
        image_bytes=tf.constant([_images(1)[0], payload]))
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    served.signatures[serving.SERVING_DEFAULT](examples=tf.constant([_example(payload)]))
  after = served.signatures[serving.SERVING_IMAGES](image_bytes=tf.constant(_images(1)))
  assert after['scores'].shape == (1, 3)


@pytest.mark.parametrize('signature,input_name', [
    (serving.SERVING_IMAGES, serving.IMAGE_BYTES_INPUT),
    (serving.SERVING_DEFAULT, serving.EXAMPLES_INPUT)])
def test_an_empty_batch_gets_empty_outputs(served, signature, input_name):
  outputs = served.signatures[signature](**{input_name: tf.constant([], tf.string)})
  assert outputs['scores'].shape == (0, 3) and outputs['classes'].shape == (0, 3)
  assert outputs['decision'].shape == (0,) and outputs['malignant_threshold'].shape == (0,)
  assert outputs['not_sure'].shape == (0,)
  if 'label' in outputs:
    assert outputs['label'].shape == (0,)


def _warmup_logs(saved_model_dir: str):
  path = os.path.join(saved_model_dir, serving.ASSETS_EXTRA, serving.WARMUP_FILE)
  return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
          for record in tf.data.TFRecordDataset(path)]


def test_warmup_requests_replay_through_the_signatures_they_name(exported, served):
  """Each warm-up request, run as TF Serving runs it, gives what a direct call gives."""
  logs = _warmup_logs(exported.saved_model_dir)
  named = sorted({log.predict_log.request.model_spec.signature_name for log in logs})
  assert named == sorted([serving.SERVING_DEFAULT, serving.SERVING_IMAGES])
  assert len(logs) <= 1000   # TF Serving's limit on warm-up records
  scans = warmup.synthetic_scans()
  for log in logs:
    request = log.predict_log.request
    signature = served.signatures[request.model_spec.signature_name]
    (input_name,) = signature.structured_input_signature[1]
    assert list(request.inputs) == [input_name]
    values = tf.make_ndarray(request.inputs[input_name])
    replayed = signature(**{input_name: tf.constant(values)})
    images = ([tf.train.Example.FromString(v).features.feature[features.IMAGE_KEY]
               .bytes_list.value[0] for v in values]
              if input_name == serving.EXAMPLES_INPUT else list(values))
    assert set(images) <= set(scans)
    direct = served.signatures[serving.SERVING_IMAGES](image_bytes=tf.constant(images))
    np.testing.assert_allclose(replayed['scores'], direct['scores'], atol=1e-6)
    np.testing.assert_array_equal(replayed['decision'], direct['decision'])
    np.testing.assert_array_equal(replayed['not_sure'], direct['not_sure'])
  assert {len(tf.make_ndarray(next(iter(log.predict_log.request.inputs.values()))))
          for log in logs} == {1, 4}
