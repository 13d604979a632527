"""Trains the seed CNN, busi_net and the default model side by side on BUSI and scores them.

Each goes through `models.training_loop.train`, the Trainer's own code, at its own
input size and epochs, on the split ImageExampleGen makes (or on
group-stratified cross-validation folds with `--folds`), and is scored on the
held-out test images: the clinical metrics, the pointing game (Grad-CAM), one
image's latency through the network, and the same model on a second
hospital's scans (BUS-BRA, bench/cross_site.py). Prints a table and writes
bench/results/quality.json (quality_cv5.json with `--folds 5`).

  make bench-quality                    # the pipeline's train / eval / test split
  make bench-quality ARGS="--folds 5"   # 5-fold cross-validation, mean ± sd

Recipes are compared with `--score-split eval`, which scores the eval split
instead: choosing by the test split would make its numbers optimistic.
"""

import argparse
import dataclasses
import datetime
import os
import platform
import shlex
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf
import tf_keras as keras

from bench import busi_arrays
from bench import classification_metrics
from bench import cross_site
from bench import results_file
from contracts import configs
from contracts import features
from dataset import data_root
from models import grad_cam
from models import lesion_net
from models import registry
from models import training_loop

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
# Columns of the printed table: (metric key, header).
COLUMNS = (
    ('accuracy', 'acc'), ('balanced_accuracy', 'bal.acc'), ('macro_f1', 'macro-F1'),
    ('macro_auc', 'AUC'), ('malignant_sensitivity', 'mal.sens'),
    ('malignant_specificity', 'mal.spec'), ('benign_vs_malignant_auc', 'B/M AUC'),
    ('ece', 'ECE'), ('pointing_game', 'pointing'), ('lesion_box_hits', 'box on lesion'),
    ('cross_site_benign_vs_malignant_auc', 'BUS-BRA B/M AUC'),
    ('cross_site_malignant_sensitivity', 'BUS-BRA mal.sens'),
    ('train_seconds', 'train s'), ('parameters', 'params'), ('latency_ms', 'ms/image'),
)
_GRAD_CAM_BATCH = 32
# One-image calls timed for the latency column, after one warm-up call.
_LATENCY_CALLS = 30


def pointing_game(model: keras.Model, model_name: str,
                  scored: busi_arrays.TransformedImages) -> float:
  """Share of scored lesion images whose true-class Grad-CAM peaks on the lesion."""
  with_lesion = np.flatnonzero(scored.masks.reshape(len(scored.masks), -1).max(axis=1) > 0)
  if not with_lesion.size:
    return float('nan')
  layer = grad_cam.explained_layer(model, model_name)
  hits = 0
  for start in range(0, with_lesion.size, _GRAD_CAM_BATCH):
    chosen = with_lesion[start:start + _GRAD_CAM_BATCH]
    heatmaps = grad_cam.grad_cam(model, scored.images[chosen], scored.labels[chosen], layer)
    hits += sum(grad_cam.peak_inside(h, m[..., 0] > 0.5)
                for h, m in zip(heatmaps, scored.masks[chosen]))
  return hits / with_lesion.size


def lesion_box_hits(model: keras.Model, scored: busi_arrays.TransformedImages) -> float:
  """Share of scored lesion images whose predicted lesion box is centred on the lesion.

  For a model that crops its own lesion (lesion_net), this is where its class
  head looks closely, beside the whole-image view Grad-CAM explains; NaN for
  a model without a lesion box.
  """
  if lesion_net.LESION_BOX not in {layer.name for layer in model.layers}:
    return float('nan')
  with_lesion = np.flatnonzero(scored.masks.reshape(len(scored.masks), -1).max(axis=1) > 0)
  if not with_lesion.size:
    return float('nan')
  localiser = keras.Model(model.inputs, model.get_layer(lesion_net.LESION_BOX).output)
  boxes = localiser.predict(scored.images[with_lesion], batch_size=_GRAD_CAM_BATCH, verbose=0)
  side = scored.masks.shape[1]
  centres = np.clip(((boxes[:, :2] + boxes[:, 2:]) / 2 * side).astype(int), 0, side - 1)
  masks = scored.masks[with_lesion, ..., 0] > 0.5
  return float(np.mean([mask[y, x] for mask, (y, x) in zip(masks, centres)]))


def one_image_latency_ms(model: keras.Model, image: np.ndarray) -> float:
  """Median time of one image through the network, traced once beforehand."""
  call = tf.function(lambda x: model(x, training=False))
  batch = tf.constant(image[np.newaxis])
  call(batch)
  times = []
  for _ in range(_LATENCY_CALLS):
    start = time.perf_counter()
    call(batch).numpy()
    times.append(time.perf_counter() - start)
  return float(np.median(times) * 1e3)


def _train_and_score(model_config: configs.ModelConfig,
                     data: busi_arrays.TransformedImages,
                     split: Dict[str, np.ndarray],
                     training_config: configs.TrainingConfig,
                     class_names: Sequence[str], score_split: str,
                     other_site: Optional[cross_site.SiteImages]) -> Dict[str, float]:
  scored = data.subset(split[score_split])
  start = time.monotonic()
  result = training_loop.train(model_config, training_config, class_names,
                          data.subset(split['train']).dataset(),
                          data.subset(split['eval']).dataset())
  seconds = time.monotonic() - start
  probs = result.scores(scored.images)
  report = classification_metrics.classification_report(
      scored.labels, probs, list(class_names), features.MALIGNANT_CLASS)
  report.update(train_seconds=seconds, epochs_run=result.epochs_run,
                best_epoch=result.best_epoch,
                temperature=result.temperature,
                parameters=int(result.serving_model.count_params()),
                scored_images=int(scored.labels.size),
                pointing_game=pointing_game(result.serving_model, model_config.name, scored),
                lesion_box_hits=lesion_box_hits(result.serving_model, scored),
                latency_ms=one_image_latency_ms(result.serving_model, scored.images[0]))
  if other_site is not None:
    site_scores = cross_site.score(other_site, result.scores(other_site.images),
                                   class_names)
    report.update(cross_site_images=site_scores.images,
                  cross_site_benign_vs_malignant_auc=site_scores.benign_vs_malignant_auc,
                  cross_site_malignant_sensitivity=site_scores.malignant_sensitivity,
                  cross_site_malignant_specificity=site_scores.malignant_specificity)
  return report


def _summary(runs: List[Dict[str, float]]) -> Dict[str, Dict[str, float]]:
  keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float))]
  return {k: {'mean': float(np.mean([r[k] for r in runs])),
              'sd': float(np.std([r[k] for r in runs], ddof=1)) if len(runs) > 1 else 0.0}
          for k in keys}


def _format(value: Optional[Dict[str, float]], key: str, folds: int) -> str:
  if value is None or np.isnan(value['mean']):
    return 'n/a'
  if key == 'parameters':
    return f'{value["mean"] / 1e6:.2f} M'
  if key in ('train_seconds', 'latency_ms'):
    digits = 0 if key == 'train_seconds' else 1
    text = f'{value["mean"]:.{digits}f}'
    return text + (f' ± {value["sd"]:.{digits}f}' if folds > 1 else '')
  text = f'{value["mean"]:.3f}'
  return text + (f' ± {value["sd"]:.3f}' if folds > 1 else '')


def markdown_table(summaries: Dict[str, Dict[str, Dict[str, float]]],
                   folds: int) -> str:
  lines = ['| model | ' + ' | '.join(h for _, h in COLUMNS) + ' |',
           '|---|' + '---|' * len(COLUMNS)]
  for name, summary in summaries.items():
    lines.append(f'| {name} | ' + ' | '.join(
        _format(summary.get(k), k, folds) for k, _ in COLUMNS) + ' |')
  return '\n'.join(lines)


def main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-root', default='',
                      help='BUSI folder (Dataset_BUSI_with_GT); default: as `make run`')
  parser.add_argument('--folds', type=int, default=0,
                      help='k-fold group-stratified cross-validation; 0: the pipeline split')
  parser.add_argument('--models', default='seed_cnn,busi_net,lesion_net',
                      help='comma-separated, from: ' + ', '.join(registry.MODEL_CHOICES))
  parser.add_argument('--epochs', type=int, default=None,
                      help='maximum epochs (early stopping on the eval split); '
                           'default: each model\'s own')
  parser.add_argument('--patience', type=int,
                      default=configs.TrainingConfig.early_stopping_patience,
                      help='early-stopping patience in epochs')
  parser.add_argument('--score-split', choices=('test', 'eval'), default='test',
                      help='split the table scores; compare recipes on eval, never test')
  parser.add_argument('--cross-site-root', default='',
                      help='BUS-BRA folder (bus_data.csv, Images/) to score each '
                           'BUSI-trained model on; default: ../shared/data/bus_bra')
  parser.add_argument('--no-cross-site', action='store_true',
                      help='skip the second-site columns')
  parser.add_argument('--output', help='JSON results file (default: bench/results/'
                                        'quality.json, or quality_cv<K>.json with --folds K)')
  args = parser.parse_args(argv)
  model_names = [m for m in args.models.split(',') if m]
  unknown = sorted(set(model_names) - set(registry.MODEL_CHOICES))
  if unknown or not model_names:
    parser.error(f'--models: unknown {unknown or "(none given)"}; '
                 f'choose from {", ".join(registry.MODEL_CHOICES)}')
  for flag, value in (('--epochs', args.epochs), ('--patience', args.patience)):
    if value is not None and value < 1:
      parser.error(f'{flag} must be at least 1, got {value}')

  busi_root = data_root.find_data_root(args.data_root)
  if busi_root is None:
    raise SystemExit('bench/quality.py: ' + data_root.not_found_message(args.data_root))
  other_site_root = None
  if not args.no_cross_site:
    other_site_root = cross_site.find_root(args.cross_site_root)
    if other_site_root is None and args.cross_site_root:
      parser.error(f'--cross-site-root {args.cross_site_root!r} holds no '
                   f'{cross_site.MANIFEST}')
  data_config = configs.DataConfig(data_root=busi_root)
  class_names = list(data_config.class_names)
  sizes = sorted({registry.spec(m).image_size for m in model_names})
  try:
    data_by_size = {size: busi_arrays.load(data_config, size) for size in sizes}
    other_site_by_size = {size: cross_site.load(other_site_root, size, class_names)
                          for size in sizes} if other_site_root else {}
    # The split depends on the files and groups only, not the decoded size.
    data = data_by_size[sizes[0]]
    splits = (busi_arrays.cross_validation_folds(data, data_config, args.folds)
              if args.folds else [busi_arrays.pipeline_split(data, data_config)])
  except ValueError as e:
    raise SystemExit(f'bench/quality.py: {e}') from None
  training_config = dataclasses.replace(configs.TrainingConfig(),
                                        early_stopping_patience=args.patience)
  model_config = configs.ModelConfig()

  runs: Dict[str, List[Dict[str, float]]] = {m: [] for m in model_names}
  for k, split in enumerate(splits):
    for model_name in model_names:
      model_spec = registry.spec(model_name)
      report = _train_and_score(
          dataclasses.replace(model_config, name=model_name,
                              image_size=model_spec.image_size),
          data_by_size[model_spec.image_size], split,
          dataclasses.replace(training_config, epochs=args.epochs or model_spec.epochs),
          class_names, args.score_split, other_site_by_size.get(model_spec.image_size))
      runs[model_name].append(report)
      print(f'[fold {k + 1}/{len(splits)}] {model_name}: ' + ', '.join(
          f'{key} {report[key]:.3f}' for key, _ in COLUMNS[:8]), flush=True)
  summaries = {m: _summary(r) for m, r in runs.items()}
  table = markdown_table(summaries, len(splits))
  print(table)

  results = {
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
      'command': ' '.join(['python bench/quality.py', *map(shlex.quote, argv)]),
      'machine': {'platform': platform.platform(), 'processor': platform.processor(),
                  'cpu_count': os.cpu_count(), 'gpus': len(tf.config.list_physical_devices('GPU')),
                  'tensorflow': tf.__version__},
      'evaluation': (f'{args.folds}-fold group-stratified cross-validation'
                     if args.folds else 'pipeline split') + f', scored on {args.score_split}',
      'cross_site': other_site_root and os.path.abspath(other_site_root),
      'split_sizes': [{name: int(ix.size) for name, ix in s.items()} for s in splits],
      'model_config': dataclasses.asdict(model_config),
      'training_config': dataclasses.asdict(training_config),
      'epochs': {m: args.epochs or registry.spec(m).epochs for m in model_names},
      'runs': runs, 'summary': summaries, 'table': table,
  }
  output = args.output or os.path.join(
      RESULTS_DIR, f'quality_cv{args.folds}.json' if args.folds else 'quality.json')
  results_file.write(results, output)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
