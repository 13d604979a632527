"""TF Serving's warm-up file: requests replayed when a version is loaded.

TensorFlow builds kernels and allocates lazily, so without warm-up the first
requests after a push pay for it. TF Serving replays the `PredictionLog`
records of `assets.extra/tf_serving_warmup_requests` (a TFRecord file) while
it loads a version, before the version is marked available. The requests here
cover both signatures, at one image and at a small batch, with synthetic scans
of two sizes (a thumbnail and a BUSI-sized frame), so the decode, the resize
and the network have all run once. Each request names its signature; the model
it runs on is the version being loaded.
"""

import os
from typing import List, Sequence

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

from contracts import features
from contracts import serving
# Height, width: a thumbnail and BUSI's typical frame.
_IMAGE_SHAPES = ((64, 48), (500, 560))
_BATCH_SIZES = (1, 4)


def synthetic_scans() -> List[bytes]:
  """Deterministic grayscale PNGs: a smooth gradient with a dark ellipse."""
  scans = []
  for height, width in _IMAGE_SHAPES:
    y, x = np.mgrid[0:height, 0:width]
    pixels = 40 + 120 * x / width + 40 * y / height
    inside = ((x - width / 2) / (width / 4)) ** 2 + ((y - height / 2) / (height / 5)) ** 2 < 1
    pixels[inside] = 20
    scans.append(tf.io.encode_png(pixels.astype(np.uint8)[..., np.newaxis]).numpy())
  return scans


def _example(image: bytes) -> bytes:
  return tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
  })).SerializeToString()


def _request(signature_name: str, input_name: str,
             values: Sequence[bytes]) -> prediction_log_pb2.PredictionLog:
  request = predict_pb2.PredictRequest(
      model_spec=model_pb2.ModelSpec(signature_name=signature_name))
  request.inputs[input_name].CopyFrom(
      tf.make_tensor_proto(list(values), dtype=tf.string, shape=[len(values)]))
  return prediction_log_pb2.PredictionLog(
      predict_log=prediction_log_pb2.PredictLog(request=request))


def warmup_requests() -> List[prediction_log_pb2.PredictionLog]:
  scans = synthetic_scans()
  logs = []
  for batch_size in _BATCH_SIZES:
    batch = [scans[i % len(scans)] for i in range(batch_size)]
    logs.append(_request(serving.SERVING_IMAGES, serving.IMAGE_BYTES_INPUT, batch))
    logs.append(_request(serving.SERVING_DEFAULT, serving.EXAMPLES_INPUT,
                         [_example(b) for b in batch]))
  return logs


def write_warmup_file(export_dir: str,
                      logs: Sequence[prediction_log_pb2.PredictionLog]) -> str:
  folder = os.path.join(export_dir, serving.ASSETS_EXTRA)
  tf.io.gfile.makedirs(folder)
  path = os.path.join(folder, serving.WARMUP_FILE)
  with tf.io.TFRecordWriter(path) as writer:
    for log in logs:
      writer.write(log.SerializeToString())
  return path
