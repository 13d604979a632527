"""Does the Trainer train on this machine's GPU, how much faster, and does its model serve on a CPU?

    python bench/gpu_check.py [--model lesion_net] [--image-size 128] [--examples 96]
                              [--epochs 2] [--batch-size 16] [--require-gpus 1]

What a Kubeflow run's Trainer does, on generated scans: the Trainer task's GPU
check (`orchestration/kubeflow/entrypoint.check_gpus`, what `--require_gpus`
runs), then the Trainer's own `run_fn` (models/run_fn.py, MirroredStrategy
over the visible GPUs) on Transform's output. The same training then runs in
a child process that sees no GPU, for the CPU's step time, and that child
loads the SavedModel the GPU exported and serves the probe scans through its
`serving_images` signature: the scores must match the GPU's within
`SCORE_TOLERANCE`, as TF Serving on a CPU would give them. It prints one JSON
line with both step times and the largest score difference.

Without a GPU it stops with one line, before any work. No test needs a GPU:
tests/gpu_check_test.py runs the CPU part on a tiny model.
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import List, Sequence

import numpy as np

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import apache_beam as beam
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tfx import v1 as tfx
from tfx.utils import io_utils
from tensorflow_metadata.proto.v0 import schema_pb2

from contracts import configs
from contracts import features
from contracts import serving
from models import preprocessing
from models import registry
from models import run_fn
from orchestration.kubeflow import entrypoint
from tests.fixtures import exported_model

# float32 on both devices; cuDNN's kernels differ from the CPU's in the last bits.
SCORE_TOLERANCE = 1e-4
PROBE_COUNT = 6
_SCHEMA_FILE = os.path.join(configs.SCHEMA_DIR, 'schema.pbtxt')


@dataclasses.dataclass(frozen=True)
class Training:
  """One `run_fn` on one device: where the model went and how long a step took."""
  device: str
  serving_model_dir: str
  seconds_per_step: float
  steps: int


def write_examples(config: configs.PipelineConfig, count: int, work_dir: str) -> str:
  """Transform's output and GZIP TFRecords of transformed train and eval examples."""
  schema = io_utils.parse_pbtxt_file(_SCHEMA_FILE, schema_pb2.Schema())
  raw_metadata = tft.DatasetMetadata(schema)
  transform_dir = os.path.join(work_dir, 'transform_output')
  coder = tft.coders.ExampleProtoCoder
  with tempfile.TemporaryDirectory() as temp_dir, beam.Pipeline() as pipeline:
    with tft_beam.Context(temp_dir=temp_dir):
      raw = pipeline | beam.Create(exported_model.synthetic_raw_examples(count))
      (transformed, transformed_metadata), transform_fn = (
          (raw, raw_metadata) | tft_beam.AnalyzeAndTransformDataset(
              lambda inputs: preprocessing.preprocessing_fn(
                  inputs, config.transform_custom_config()),
              output_record_batches=False))
      _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
      _ = raw_metadata | 'WriteRawMetadata' >> tft_beam.WriteMetadata(
          os.path.join(transform_dir, tft.TFTransformOutput.RAW_METADATA_DIR), pipeline)
      encoded = transformed | beam.Map(
          lambda example, schema=transformed_metadata.schema: coder(schema).encode(example))
      for split in ('train', 'eval'):
        _ = encoded | f'Write{split}' >> beam.io.WriteToTFRecord(
            os.path.join(work_dir, split, 'examples'), file_name_suffix='.gz',
            compression_type=beam.io.filesystem.CompressionTypes.GZIP)
  return transform_dir


def train(config: configs.PipelineConfig, work_dir: str, device: str) -> Training:
  """The Trainer's `run_fn` on what `write_examples` wrote; timed from its first step."""
  out_dir = os.path.join(work_dir, device)
  fn_args = tfx.components.FnArgs(
      train_files=[os.path.join(work_dir, 'train', '*.gz')],
      eval_files=[os.path.join(work_dir, 'eval', '*.gz')],
      transform_output=os.path.join(work_dir, 'transform_output'),
      serving_model_dir=os.path.join(out_dir, 'serving_model'),
      model_run_dir=os.path.join(out_dir, 'model_run'),
      custom_config=configs.resolved_trainer_config(config))
  started = time.monotonic()
  run_fn.run_fn(fn_args)
  seconds = time.monotonic() - started
  with tf.io.gfile.GFile(os.path.join(out_dir, 'model_run', 'training_summary.json')) as f:
    epochs = json.load(f)['epochs_run']
  steps = epochs * -(-int(_example_count(work_dir)) // config.training.batch_size)
  return Training(device, fn_args.serving_model_dir, seconds / steps, steps)


def _example_count(work_dir: str) -> int:
  files = tf.io.gfile.glob(os.path.join(work_dir, 'train', '*.gz'))
  return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type='GZIP'))


def probe_images(count: int = PROBE_COUNT) -> List[bytes]:
  return [example[features.IMAGE_KEY][0]
          for example in exported_model.synthetic_raw_examples(count, seed=7)]


def serve(saved_model_dir: str, images: Sequence[bytes]) -> np.ndarray:
  """Class scores of `images` through the exported `serving_images` signature."""
  signature = tf.saved_model.load(saved_model_dir).signatures[serving.SERVING_IMAGES]
  outputs = signature(**{serving.IMAGE_BYTES_INPUT: tf.constant(list(images))})
  return outputs[serving.SCORES_OUTPUT].numpy()


def config_of(args: argparse.Namespace) -> configs.PipelineConfig:
  spec = registry.spec(args.model)
  return dataclasses.replace(
      configs.PipelineConfig(pipeline_root='', serving_dir=''),
      model=dataclasses.replace(configs.ModelConfig(), name=args.model,
                                image_size=args.image_size or spec.image_size),
      training=dataclasses.replace(configs.TrainingConfig(), epochs=args.epochs,
                                   batch_size=args.batch_size))


def cpu_part(args: argparse.Namespace, gpu_model_dir: str) -> dict:
  """In a process that sees no GPU: the CPU's step time, and the GPU model's CPU scores."""
  command = [sys.executable, os.path.abspath(__file__), '--cpu-part', gpu_model_dir,
             '--work-dir', args.work_dir, '--model', args.model,
             '--image-size', str(args.image_size), '--epochs', str(args.epochs),
             '--batch-size', str(args.batch_size)]
  env = {**os.environ, 'CUDA_VISIBLE_DEVICES': '-1'}
  result = subprocess.run(command, env=env, check=False, capture_output=True, text=True)
  if result.returncode:
    raise RuntimeError(f'the CPU part failed:\n{result.stderr[-3000:]}')
  return json.loads(result.stdout.strip().splitlines()[-1])


def parse_args(argv: List[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', choices=registry.MODEL_CHOICES, default='lesion_net')
  parser.add_argument('--image-size', type=int, default=128)
  parser.add_argument('--examples', type=int, default=96)
  parser.add_argument('--epochs', type=int, default=2)
  parser.add_argument('--batch-size', type=int, default=16)
  parser.add_argument('--require-gpus', type=int, default=1)
  parser.add_argument('--work-dir', default='')
  parser.add_argument('--cpu-part', metavar='GPU_SAVED_MODEL', default='',
                      help=argparse.SUPPRESS)
  return parser.parse_args(argv)


def main(argv: List[str]) -> int:
  args = parse_args(argv)
  config = config_of(args)
  if args.cpu_part:
    cpu = train(config, args.work_dir, 'cpu')
    print(json.dumps({'cpu_seconds_per_step': cpu.seconds_per_step,
                      'scores': serve(args.cpu_part, probe_images()).tolist()}))
    return 0
  visible = len(tf.config.list_physical_devices('GPU'))
  try:
    entrypoint.check_gpus(args.require_gpus, visible)
  except entrypoint.MissingGpuError:
    print(f'gpu_check: needs {args.require_gpus} GPU(s) but TensorFlow sees {visible}: '
          'run it on a machine where nvidia-smi lists a GPU', file=sys.stderr)
    return 1
  args.work_dir = args.work_dir or tempfile.mkdtemp(prefix='gpu_check_')
  write_examples(config, args.examples, args.work_dir)
  gpu = train(config, args.work_dir, 'gpu')
  gpu_scores = serve(gpu.serving_model_dir, probe_images())
  cpu = cpu_part(args, gpu.serving_model_dir)
  difference = float(np.max(np.abs(np.array(cpu['scores']) - gpu_scores)))
  print(json.dumps({
      'gpus': [gpu.name for gpu in tf.config.list_physical_devices('GPU')],
      'model': args.model, 'image_size': config.model.image_size, 'steps': gpu.steps,
      'gpu_seconds_per_step': round(gpu.seconds_per_step, 4),
      'cpu_seconds_per_step': round(cpu['cpu_seconds_per_step'], 4),
      'speedup': round(cpu['cpu_seconds_per_step'] / gpu.seconds_per_step, 2),
      'max_score_difference_on_cpu': difference,
      'same_scores_on_cpu': difference <= SCORE_TOLERANCE}))
  return 0 if difference <= SCORE_TOLERANCE else 1


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
