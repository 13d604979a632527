"""The Trainer's `run_fn`: transformed examples in, a servable SavedModel out."""

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional

from absl import logging
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from contracts import configs
from contracts import names
from models import operating_point
from models import signatures
from models import training_loop


def _examples(file_patterns: List[str],
              tf_transform_output: tft.TFTransformOutput) -> tf.data.Dataset:
  """Unbatched dicts of transformed features, read in file order."""
  files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
  spec = tf_transform_output.transformed_feature_spec()
  return (tf.data.TFRecordDataset(files, compression_type='GZIP')
          .map(lambda record: tf.io.parse_single_example(record, spec),
               num_parallel_calls=tf.data.AUTOTUNE))


def distribution_strategy() -> tf.distribute.Strategy:
  """Mirrors the model on every visible GPU; the default strategy on a CPU."""
  gpus = tf.config.list_physical_devices('GPU')
  if not gpus:
    logging.info('Trainer: no GPU visible, training on the CPU.')
    return tf.distribute.get_strategy()
  logging.info('Trainer: MirroredStrategy over %d GPU(s): %s', len(gpus),
               ', '.join(gpu.name for gpu in gpus))
  return tf.distribute.MirroredStrategy()


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  custom_config = fn_args.custom_config
  model_config = configs.model_config_from(custom_config)
  training_config = configs.training_config_from(custom_config)
  class_names = custom_config['class_names']
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  # The Trainer's executor names the served version to start from, if any; a
  # warm start trains its own, shorter, schedule.
  started_from = custom_config.get(names.WARM_START_FROM_KEY, '')
  if started_from:
    training_config = dataclasses.replace(training_config,
                                          epochs=training_config.warm_start_epochs)

  result = training_loop.train(
      model_config, training_config, class_names,
      _examples(fn_args.train_files, tf_transform_output),
      _examples(fn_args.eval_files, tf_transform_output),
      log_dir=os.path.join(fn_args.model_run_dir, 'tensorboard'),
      strategy=distribution_strategy(),
      initial_weights=(training_loop.warm_start_checkpoint(started_from)
                       if started_from else None))
  signatures.export_serving_model(result.serving_model, tf_transform_output,
                                  class_names, fn_args.serving_model_dir,
                                  result.temperature, result.operating_point,
                                  result.not_sure_cutoff)
  logging.info('Trainer: %s', result.operating_point.summary_line())
  for point in result.site_operating_points.values():
    operating_point.write_site(fn_args.serving_model_dir, point)
    logging.info('Trainer: %s', point.summary_line())
  summary = {'model': model_config.name, 'started_from': started_from,
             'parameters': int(result.serving_model.count_params()),
             'epochs_run': result.epochs_run, 'best_epoch': result.best_epoch,
             'history': result.history, 'temperature': result.temperature,
             'operating_point': dataclasses.asdict(result.operating_point),
             'site_operating_points': {site: dataclasses.asdict(point) for site, point
                                       in result.site_operating_points.items()},
             'not_sure_cutoff': result.not_sure_cutoff}
  with tf.io.gfile.GFile(
      os.path.join(fn_args.model_run_dir, names.TRAINING_SUMMARY_FILE), 'w') as f:
    json.dump(summary, f, indent=1, default=float)


def read_training_summary(model_run_dir: str) -> Optional[Dict[str, Any]]:
  """The summary `run_fn` wrote into a ModelRun folder; None where it wrote none."""
  path = os.path.join(model_run_dir, names.TRAINING_SUMMARY_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)
