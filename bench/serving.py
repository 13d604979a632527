"""Serving latency: `serving_images` on real BUSI files against the bare network.

  make bench-serving                       # lesion_net (the default) at 256 px
  make bench-serving ARGS="--calls 500"

The serving path is what TF Serving runs: the exported SavedModel's
`serving_images` signature on encoded PNG bytes (decode, resize and scale in
the graph, then the network). Its floor is what its parts cost on the same
payloads: decoding and resizing them (`preprocessing_only`, the Transform
graph's own decode) plus the same Keras network on tensors preprocessed
beforehand (`bare_network`). `decode_only` stops after the PNG decode, which
splits preprocessing into decoding and resizing. All paths run in one process,
interleaved call by call, so machine load hits them alike. The network is
untrained: latency does not depend on the weights. Prints a table and writes
bench/results/serving.json.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from typing import Callable, Dict, List, Sequence

import numpy as np

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf

from contracts import configs
from contracts import features
from contracts import serving
from dataset import data_root
from dataset import image_files
from models import preprocessing
from models import registry
from tests.fixtures import exported_model

DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              'results', 'serving.json')
BATCH_SIZES = (1, 8, 32)
# The targets: serving_images within 15% of its parts (decode + resize +
# network) at every batch size, and one image in at most 10 ms (p50).
MAX_SINGLE_IMAGE_P50_MS = 10.0
MAX_RATIO_TO_PARTS = 1.15
# Larger batches get fewer calls (`--calls` / batch size), but never fewer than this.
MIN_CALLS = 20


def _busi_images(data_root: str, count: int) -> List[bytes]:
  """`count` scans (never masks), spread over the classes in a fixed order."""
  scan = image_files.scan_folder(data_root, features.CLASS_NAMES)
  by_class = [[i for i in scan.images if i.label == label] for label in features.CLASS_NAMES]
  chosen = [image for group in zip(*by_class) for image in group][:count]
  return [image_files.read_bytes(data_root, image.relpath) for image in chosen]


def _cpu_name() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      return next(line.split(':', 1)[1].strip() for line in f
                  if line.startswith('model name'))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()


def _time_calls(paths: Dict[str, Callable[[int], object]], calls: int,
                warmup: int) -> Dict[str, np.ndarray]:
  """Seconds per call of each path; paths alternate on every call."""
  for call in range(warmup):
    for run in paths.values():
      run(call)
  seconds = {name: np.empty(calls) for name in paths}
  for call in range(calls):
    for name, run in paths.items():
      start = time.perf_counter()
      run(call)
      seconds[name][call] = time.perf_counter() - start
  return seconds


def _stats(seconds: np.ndarray, batch_size: int) -> Dict[str, float]:
  return {
      'p50_ms': float(np.percentile(seconds, 50) * 1e3),
      'p99_ms': float(np.percentile(seconds, 99) * 1e3),
      'mean_ms': float(seconds.mean() * 1e3),
      'images_per_s': float(batch_size / seconds.mean()),
  }


def benchmark(images: Sequence[bytes], model_config: configs.ModelConfig,
              calls: int, warmup: int) -> Dict[int, Dict[str, Dict[str, float]]]:
  with tempfile.TemporaryDirectory() as work_dir:
    exported = exported_model.export_untrained_model(
        model_config, work_dir, os.path.join(work_dir, 'saved_model'))
    serving_images = tf.saved_model.load(
        exported.saved_model_dir).signatures[serving.SERVING_IMAGES]
    size = model_config.image_size
    preprocessed = preprocessing.decode_batch(tf.constant(list(images)), size)
    bare_network = tf.function(
        lambda x: exported.keras_model(x, training=False),
        input_signature=[tf.TensorSpec([None, size, size, 1], tf.float32)])
    preprocess_only = tf.function(
        lambda encoded: preprocessing.decode_batch(encoded, size),
        input_signature=[tf.TensorSpec([None], tf.string)])
    decode_only = tf.function(
        lambda encoded: tf.map_fn(_decoded_pixel_count, encoded,
                                  fn_output_signature=tf.int32),
        input_signature=[tf.TensorSpec([None], tf.string)])

    results = {}
    for batch_size in BATCH_SIZES:
      batch_calls = max(calls // batch_size, MIN_CALLS)
      starts = [(call * batch_size) % (len(images) - batch_size + 1)
                for call in range(batch_calls + warmup)]
      encoded = [tf.constant(list(images[s:s + batch_size])) for s in starts]
      tensors = [preprocessed[s:s + batch_size] for s in starts]
      seconds = _time_calls({
          'serving_images': lambda c: serving_images(image_bytes=encoded[c]),
          'bare_network': lambda c: bare_network(tensors[c]),
          'preprocessing_only': lambda c: preprocess_only(encoded[c]),
          'decode_only': lambda c: decode_only(encoded[c]),
      }, batch_calls, warmup)
      results[batch_size] = {name: _stats(s, batch_size) for name, s in seconds.items()}
      results[batch_size].update(_ratio_and_shares(results[batch_size]))
  return results


def _decoded_pixel_count(encoded: tf.Tensor) -> tf.Tensor:
  """Decodes as the signature does (gray, uint8) and keeps only the size."""
  return tf.size(tf.io.decode_image(encoded, channels=1, dtype=tf.uint8,
                                    expand_animations=False))


def _ratio_and_shares(by_path: Dict[str, Dict[str, float]]) -> Dict[str, object]:
  """serving_images over its parts (p50s), and each part's share of the parts."""
  decode = by_path['decode_only']['p50_ms']
  preprocess = by_path['preprocessing_only']['p50_ms']
  network = by_path['bare_network']['p50_ms']
  parts = preprocess + network
  return {
      'ratio_to_parts': by_path['serving_images']['p50_ms'] / parts,
      'share_of_parts': {'decoding': decode / parts,
                         'resizing': max(preprocess - decode, 0.0) / parts,
                         'network': network / parts},
  }


def _table(results) -> str:
  rows = ['| batch | path | p50 ms | p99 ms | images/s |',
          '|---:|---|---:|---:|---:|']
  for batch_size, by_path in results.items():
    for path in ('serving_images', 'preprocessing_only', 'decode_only', 'bare_network'):
      s = by_path[path]
      rows.append(f'| {batch_size} | {path} | {s["p50_ms"]:.1f} | {s["p99_ms"]:.1f} '
                  f'| {s["images_per_s"]:.0f} |')
    shares = by_path['share_of_parts']
    rows.append(f'| {batch_size} | serving / (preprocessing + network), p50 | '
                f'{by_path["ratio_to_parts"]:.2f}x | | |')
    rows.append(f'| {batch_size} | share: decoding / resizing / network | '
                f'{shares["decoding"]:.0%} / {shares["resizing"]:.0%} / '
                f'{shares["network"]:.0%} | | |')
  return '\n'.join(rows)


def main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-root', help='BUSI folder (default: as `make run`)')
  parser.add_argument('--model', choices=registry.MODEL_CHOICES,
                      default=configs.ModelConfig().name)
  parser.add_argument('--image-size', type=int, default=configs.ModelConfig().image_size)
  parser.add_argument('--images', type=int, default=96,
                      help='distinct BUSI scans the calls cycle through')
  parser.add_argument('--calls', type=int, default=300,
                      help='timed single-image calls; batch size b gets calls/b')
  parser.add_argument('--warmup', type=int, default=10)
  parser.add_argument('--output', default=DEFAULT_OUTPUT)
  args = parser.parse_args(argv)
  busi_root = data_root.find_data_root(args.data_root)
  if busi_root is None:
    parser.error(data_root.not_found_message(args.data_root))
  if args.images < max(BATCH_SIZES):
    parser.error(f'--images must be at least {max(BATCH_SIZES)}, the largest batch')

  images = _busi_images(busi_root, args.images)
  model_config = configs.ModelConfig(name=args.model, image_size=args.image_size)
  load_before = os.getloadavg()
  results = benchmark(images, model_config, args.calls, args.warmup)
  single_p50 = results[1]['serving_images']['p50_ms']
  report = {
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
      'command': 'make bench-serving' + (f' ARGS={shlex.quote(" ".join(argv))}'
                                         if argv else ''),
      'model': model_config.name, 'image_size': model_config.image_size,
      'weights': 'untrained (latency does not depend on them)',
      'images': f'{len(images)} BUSI PNG scans from {busi_root}',
      'calls_per_batch_size': {str(b): max(args.calls // b, MIN_CALLS)
                               for b in BATCH_SIZES},
      'machine': {'cpu': _cpu_name(),
                  'cores': os.cpu_count(), 'load_average_before': load_before,
                  'load_average_after': os.getloadavg()},
      'tensorflow': tf.__version__,
      'results': {str(b): r for b, r in results.items()},
      'targets': {
          'single_image_p50_ms': {'limit': MAX_SINGLE_IMAGE_P50_MS, 'measured': single_p50,
                                  'met': single_p50 <= MAX_SINGLE_IMAGE_P50_MS},
          **{f'ratio_to_parts_at_batch_{b}': {
              'limit': MAX_RATIO_TO_PARTS, 'measured': results[b]['ratio_to_parts'],
              'met': results[b]['ratio_to_parts'] <= MAX_RATIO_TO_PARTS}
             for b in BATCH_SIZES},
      },
  }
  os.makedirs(os.path.dirname(args.output), exist_ok=True)
  with open(args.output, 'w') as f:
    json.dump(report, f, indent=1)
  print(_table(results))
  print(json.dumps(report['targets'], indent=1))
  print(f'Wrote {args.output}')
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
