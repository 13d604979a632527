"""Warm-started retraining against training from scratch, on BUSI grown by a tenth.

A scheduled run retrains on an export that grew a little since the served
model was trained. This measures what starting from the served model's weights
buys, with the Trainer's own code (`models.training_loop.train`):

1. the served model: the family trained from its initial weights (ImageNet for
   lesion_net) on BUSI less every 10th image of each class (`--hold-back`);
2. on all of BUSI, split with that model's split ledger as the pipeline splits
   it (old images keep their splits), (a) cold: from the initial weights for
   `--epochs`, and (b) warm: from the served model's weights for `--warm-epochs`.

Each is scored on the grown data's eval split (never test: the result chooses a
default), which holds no image the served model trained on. Writes
bench/results/warm_start.json and prints a table.

  make bench-warm                                   # the default recipes
  make bench-warm ARGS="--epochs 6 --warm-epochs 2" # all arms shorter alike
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf

from bench import busi_arrays
from bench import classification_metrics
from bench import results_file
from contracts import configs
from contracts import features
from dataset import data_root
from dataset import image_files
from dataset import split_plan
from models import registry
from models import training_loop

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
# The target: warm at least this many times faster than cold, and no
# quality figure more than QUALITY_TOLERANCE below cold's.
MIN_SPEEDUP = 3.0
QUALITY_TOLERANCE = 0.01
QUALITY_KEYS = ('accuracy', 'malignant_sensitivity', 'malignant_specificity',
                'macro_auc', 'benign_vs_malignant_auc')
COLUMNS = (('train_seconds', 'train s'), ('train_cpu_seconds', 'train CPU s'),
           ('epochs_run', 'epochs'), ('accuracy', 'acc'),
           ('malignant_sensitivity', 'mal.sens'), ('malignant_specificity', 'mal.spec'),
           ('macro_auc', 'AUC'), ('benign_vs_malignant_auc', 'B/M AUC'), ('ece', 'ECE'))


def held_back(found: Sequence[image_files.ImageFingerprint], every: int) -> List[str]:
  """Every `every`-th image of each class in path order: the export's new images."""
  by_class: Dict[str, List[str]] = {}
  for f in sorted(found, key=lambda f: f.relpath):
    by_class.setdefault(f.label, []).append(f.relpath)
  return sorted(path for paths in by_class.values()
                for path in paths[every - 1::every])


def _indices(data: busi_arrays.TransformedImages, plan: split_plan.SplitPlan
             ) -> Dict[str, np.ndarray]:
  splits = np.array([plan.assignment[path][1] if path in plan.assignment else ''
                     for path in data.relpaths])
  return {name: np.flatnonzero(splits == name) for name in ('train', 'eval', 'test')}


def _train(model_config: configs.ModelConfig, training_config: configs.TrainingConfig,
           class_names: Sequence[str], data: busi_arrays.TransformedImages,
           split: Dict[str, np.ndarray], initial_weights: Optional[str]):
  wall, cpu = time.monotonic(), time.process_time()
  result = training_loop.train(model_config, training_config, class_names,
                               data.subset(split['train']).dataset(),
                               data.subset(split['eval']).dataset(),
                               initial_weights=initial_weights)
  return result, {'train_seconds': time.monotonic() - wall,
                  'train_cpu_seconds': time.process_time() - cpu,
                  'epochs_run': result.epochs_run, 'best_epoch': result.best_epoch,
                  'train_images': int(split['train'].size)}


def _score(result: training_loop.TrainResult, scored: busi_arrays.TransformedImages,
           class_names: Sequence[str]) -> Dict[str, float]:
  return classification_metrics.classification_report(
      scored.labels, result.scores(scored.images), list(class_names),
      features.MALIGNANT_CLASS)


def verdict(cold: Dict[str, float], warm: Dict[str, float]) -> Dict[str, object]:
  """Whether warm meets the target against cold: speed, and each quality figure."""
  speedup = cold['train_seconds'] / warm['train_seconds']
  cpu_speedup = cold['train_cpu_seconds'] / warm['train_cpu_seconds']
  differences = {k: warm[k] - cold[k] for k in QUALITY_KEYS}
  worse = sorted(k for k, d in differences.items() if not d >= -QUALITY_TOLERANCE)
  return {'speedup': round(speedup, 2), 'cpu_speedup': round(cpu_speedup, 2),
          'quality_warm_minus_cold': {k: round(d, 4) for k, d in differences.items()},
          'faster_enough': min(speedup, cpu_speedup) >= MIN_SPEEDUP,
          'worse_than_tolerance': worse,
          'adopt': min(speedup, cpu_speedup) >= MIN_SPEEDUP and not worse}


def markdown_table(arms: Dict[str, Dict[str, float]]) -> str:
  lines = ['| arm | ' + ' | '.join(h for _, h in COLUMNS) + ' |',
           '|---|' + '---:|' * len(COLUMNS)]
  for name, row in arms.items():
    cells = []
    for key, _ in COLUMNS:
      value = row.get(key, float('nan'))
      cells.append(f'{value:.0f}' if key.endswith('seconds') or key == 'epochs_run'
                   else f'{value:.3f}')
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-root', default='',
                      help='BUSI folder (Dataset_BUSI_with_GT); default: as `make run`')
  parser.add_argument('--model', default=configs.ModelConfig().name,
                      choices=registry.MODEL_CHOICES)
  parser.add_argument('--epochs', type=int, default=None,
                      help="epochs of the cold arms; default: the family's own")
  parser.add_argument('--warm-epochs', type=int,
                      default=configs.TrainingConfig().warm_start_epochs,
                      help='epochs of the warm arm')
  parser.add_argument('--hold-back', type=int, default=10,
                      help='every N-th image of each class is new in the grown export')
  parser.add_argument('--output', default=os.path.join(RESULTS_DIR, 'warm_start.json'))
  args = parser.parse_args(argv)
  for flag, value in (('--epochs', args.epochs), ('--warm-epochs', args.warm_epochs),
                      ('--hold-back', args.hold_back)):
    if value is not None and value < (2 if flag == '--hold-back' else 1):
      parser.error(f'{flag} is too small: {value}')
  busi_root = data_root.find_data_root(args.data_root)
  if busi_root is None:
    raise SystemExit('bench/warm_start.py: ' + data_root.not_found_message(args.data_root))

  data_config = configs.DataConfig(data_root=busi_root)
  class_names = list(data_config.class_names)
  model_spec = registry.spec(args.model)
  model_config = dataclasses.replace(configs.ModelConfig(), name=args.model,
                                     image_size=model_spec.image_size)
  cold_config = dataclasses.replace(configs.TrainingConfig(),
                                    epochs=args.epochs or model_spec.epochs)
  warm_config = dataclasses.replace(cold_config, epochs=args.warm_epochs)
  plan_args = (data_config.splits.as_dict(), data_config.near_duplicate_max_bits,
               data_config.split_seed, data_config.label_conflicts)

  found = busi_arrays.fingerprints(data_config)
  new = set(held_back(found, args.hold_back))
  old_plan = split_plan.plan_splits([f for f in found if f.relpath not in new], *plan_args)
  grown_plan = split_plan.plan_splits(found, *plan_args, ledger=old_plan.ledger)
  data = busi_arrays.decode(data_config, grown_plan, found, model_spec.image_size)
  old_split, grown_split = _indices(data, old_plan), _indices(data, grown_plan)
  moved = sum(1 for path, (_, split) in old_plan.assignment.items()
              if grown_plan.assignment.get(path, (None, split))[1] != split)
  scored = data.subset(grown_split['eval'])
  print(f'{len(new)} new images; old images that changed split: {moved}; grown split '
        + ', '.join(f'{k} {v.size}' for k, v in grown_split.items()), flush=True)

  arms: Dict[str, Dict[str, float]] = {}
  served, arms['served (90%, cold)'] = _train(model_config, cold_config, class_names,
                                              data, old_split, None)
  arms['served (90%, cold)'].update(_score(served, scored, class_names))
  print(arms, flush=True)
  with tempfile.TemporaryDirectory() as work:
    checkpoint = training_loop.write_network(served.serving_model,
                                             os.path.join(work, 'served'))
    del served
    for name, config, weights in (('cold (100%)', cold_config, None),
                                  ('warm (100%)', warm_config, checkpoint)):
      result, arms[name] = _train(model_config, config, class_names, data, grown_split,
                                  weights)
      arms[name].update(_score(result, scored, class_names))
      print(name, arms[name], flush=True)
  table = markdown_table(arms)
  decision = verdict(arms['cold (100%)'], arms['warm (100%)'])
  print(table)
  print(json.dumps(decision))
  results = {
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
      'command': ' '.join(['python bench/warm_start.py', *map(shlex.quote, argv)]),
      'machine': {'platform': platform.platform(), 'cpu_count': os.cpu_count(),
                  'load_average_after': os.getloadavg(),
                  'gpus': len(tf.config.list_physical_devices('GPU')),
                  'tensorflow': tf.__version__},
      'model_config': dataclasses.asdict(model_config),
      'epochs': {'cold': cold_config.epochs, 'warm': warm_config.epochs},
      'new_images': len(new), 'old_images_moved': moved,
      'split_sizes': {'served': {k: int(v.size) for k, v in old_split.items()},
                      'grown': {k: int(v.size) for k, v in grown_split.items()}},
      'scored': f'eval split of the grown data, {scored.labels.size} images',
      'arms': arms, 'verdict': decision, 'table': table,
  }
  results_file.write(results, args.output)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
