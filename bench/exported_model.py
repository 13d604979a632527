"""Exports a model the way the Trainer does, in seconds, for tests and benchmarks.

Serving behaviour depends on the exported graph, not on trained weights, so an
untrained network is enough: Transform runs in-process on a few synthetic
examples (preprocessing_fn has no analyzers, so the data only has to parse
against the real schema), the malignant operating point is chosen as the
Trainer chooses it, on the network's scores of a few synthetic scans standing
in for the eval split, and `signatures.export_serving_model` writes the
SavedModel exactly as the Trainer does.
"""

import dataclasses
import functools
import io
import os
import tempfile

import apache_beam as beam
import numpy as np
from PIL import Image
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
import tf_keras
from tfx.utils import io_utils
from tensorflow_metadata.proto.v0 import schema_pb2

from bench import synthetic_busi
from contracts import configs
from contracts import features
from contracts import operating_point as op
from models import inference
from models import operating_point
from dataset import intensity
from models import preprocessing
from models import registry
from models import signatures

_SCHEMA_FILE = os.path.join(configs.SCHEMA_DIR, 'schema.pbtxt')


def encode_png(pixels: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format='PNG')
  return buffer.getvalue()


def synthetic_raw_examples(count: int, seed: int = 0):
  """Raw feature dicts as ImageExampleGen writes them, one per class in turn."""
  rng = np.random.default_rng(seed)
  examples = []
  for n in range(count):
    label = features.CLASS_NAMES[n % len(features.CLASS_NAMES)]
    image, mask = synthetic_busi.make_image(label, rng)
    grey = intensity.intensity_stats(encode_png(image))
    examples.append({
        features.IMAGE_KEY: [encode_png(image)],
        features.LABEL_KEY: [label.encode()],
        features.FILENAME_KEY: [f'{label}/{label} ({n}).png'.encode()],
        features.HEIGHT_KEY: [image.shape[0]],
        features.WIDTH_KEY: [image.shape[1]],
        features.SHA256_KEY: [b'0' * 64],
        features.PHASH_KEY: [b'0' * 16],
        features.GROUP_KEY: [str(n).encode()],
        features.MASK_KEY: [encode_png(mask.astype(np.uint8) * 255)],
        features.MASK_COUNT_KEY: [int(mask.any())],
        # As ImageExampleGen writes a single-folder run's examples.
        features.SITE_KEY: [b'default'], features.DEVICE_KEY: [b''], features.PATIENT_KEY: [b''],
        features.INTENSITY_MEAN_KEY: [grey.mean], features.INTENSITY_SPREAD_KEY: [grey.spread],
        features.DARK_FRACTION_KEY: [grey.dark_fraction],
    })
  return examples


def run_transform(image_size: int, output_dir: str) -> tft.TFTransformOutput:
  """Runs the project's preprocessing_fn through TFT on the local Beam runner."""
  schema = io_utils.parse_pbtxt_file(_SCHEMA_FILE, schema_pb2.Schema())
  custom_config = {'class_names': list(features.CLASS_NAMES),
                   'model': {'image_size': image_size}}
  preprocessing_fn = functools.partial(preprocessing.preprocessing_fn,
                                       custom_config=custom_config)
  raw_metadata = tft.DatasetMetadata(schema)
  with tempfile.TemporaryDirectory() as temp_dir, beam.Pipeline() as pipeline:
    with tft_beam.Context(temp_dir=temp_dir):
      raw = pipeline | beam.Create(synthetic_raw_examples(len(features.CLASS_NAMES)))
      transform_fn = (raw, raw_metadata) | tft_beam.AnalyzeDataset(preprocessing_fn)
      _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
      _ = raw_metadata | tft_beam.WriteMetadata(
          os.path.join(output_dir, tft.TFTransformOutput.RAW_METADATA_DIR), pipeline)
  return tft.TFTransformOutput(output_dir)


@dataclasses.dataclass(frozen=True)
class ExportedModel:
  saved_model_dir: str
  keras_model: tf_keras.Model                  # the exported network, in memory
  tf_transform_output: tft.TFTransformOutput
  temperature: float
  operating_point: op.OperatingPoint


def export_untrained_model(model_config: configs.ModelConfig, work_dir: str,
                           export_dir: str, temperature: float = 1.0) -> ExportedModel:
  """Exports an untrained `model_config` network to `export_dir`."""
  tf_transform_output = run_transform(model_config.image_size,
                                      os.path.join(work_dir, 'transform_output'))
  _, serving_model = registry.build_model(model_config, len(features.CLASS_NAMES))
  malignant_point = _operating_point(serving_model, tf_transform_output, temperature)
  signatures.export_serving_model(serving_model, tf_transform_output,
                                  features.CLASS_NAMES, export_dir, temperature,
                                  malignant_point)
  return ExportedModel(export_dir, serving_model, tf_transform_output, temperature,
                       malignant_point)


def _operating_point(network: tf_keras.Model, tf_transform_output: tft.TFTransformOutput,
                     temperature: float) -> op.OperatingPoint:
  """Chosen for the default target on synthetic scans, four of each class."""
  raw = synthetic_raw_examples(4 * len(features.CLASS_NAMES), seed=1)
  transformed = tf_transform_output.transform_raw_features({
      key: tf.constant([example[key] for example in raw])
      for key in (features.IMAGE_KEY, features.MASK_KEY, features.LABEL_KEY)})
  malignant = features.CLASS_NAMES.index(features.MALIGNANT_CLASS)
  scores = inference.class_scores(network, transformed[features.IMAGE_XF],
                                  temperature).numpy()
  labels = transformed[features.LABEL_XF].numpy()
  return operating_point.choose(scores[:, malignant], labels == malignant,
                                configs.TrainingConfig().target_malignant_sensitivity)
