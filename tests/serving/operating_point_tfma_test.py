"""TFMA, run on an exported SavedModel as the Evaluator runs it, counts the served decision.

The model's threshold is moved to its extremes, so the malignant sensitivity
and specificity TFMA reports can only be right if they are taken at the
threshold the model returns, not at its top class.
"""

import dataclasses

import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma

from contracts import features
from contracts import names
from models import signatures
from pipeline import eval_config
from tests.fixtures import exported_model

# Each case runs TFMA on the local Beam runner.
pytestmark = pytest.mark.integration

_EXAMPLES = 6


def _write_examples(path: str) -> None:
  with tf.io.TFRecordWriter(path) as writer:
    for raw in exported_model.synthetic_raw_examples(_EXAMPLES, seed=2):
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.IMAGE_KEY: tf.train.Feature(
              bytes_list=tf.train.BytesList(value=raw[features.IMAGE_KEY])),
          features.LABEL_KEY: tf.train.Feature(
              bytes_list=tf.train.BytesList(value=raw[features.LABEL_KEY])),
      })).SerializeToString())


@pytest.mark.parametrize('threshold, sensitivity, specificity', [
    (0.0, 1.0, 0.0),     # every scan referred
    (1.01, 0.0, 1.0),    # none referred, whatever the top class
])
def test_tfma_takes_the_malignant_rates_at_the_models_threshold(
    exported, tmp_path, threshold, sensitivity, specificity):
  export_dir = str(tmp_path / 'model')
  signatures.export_serving_model(
      exported.keras_model, exported.tf_transform_output, features.CLASS_NAMES,
      export_dir, exported.temperature,
      dataclasses.replace(exported.operating_point, threshold=threshold),
      exported.not_sure_cutoff)
  data = str(tmp_path / 'examples.tfrecord')
  _write_examples(data)
  config = eval_config.create_eval_config(features.CLASS_NAMES, slice_by_device=False)
  result = tfma.run_model_analysis(
      eval_shared_model=tfma.default_eval_shared_model(export_dir, eval_config=config),
      eval_config=config, data_location=data, output_path=str(tmp_path / 'out'))
  overall = dict(result.slicing_metrics)[()]['']['']
  assert overall[names.MALIGNANT_SENSITIVITY_METRIC]['doubleValue'] == sensitivity
  assert overall[names.MALIGNANT_SPECIFICITY_METRIC]['doubleValue'] == specificity
  assert overall[f'{features.MALIGNANT_CLASS}{names.CLASS_EXAMPLES_SUFFIX}'][
      'doubleValue'] == _EXAMPLES / len(features.CLASS_NAMES)
