"""Trains on one site's training split and tests on its test split and on another site.

The other half of the leave-one-site-out bench (bench/cross_site.py scores a
pipeline-trained model): here the model is trained by the Trainer's own code
(`models.training_loop.train`) on the split a pipeline run of that site alone
would make (each patient's images in one split), with its operating point
chosen on that site's eval split. It is then scored on the site's test split,
beside the radiologist's BI-RADS on the same scans where the manifest gives
it, and on every benign and malignant scan of the other site:

  make bench-sites    # bus_bra's training split; tested on its test split and on BUSI
  python bench/leave_site_out.py --train-site bus_bra=../shared/data/bus_bra \\
      --test-site busi=../shared/data/busi/Dataset_BUSI_with_GT --epochs 10

This is how a site that the pipeline cannot run alone (BUS-BRA has no normal
scans, and a run needs every class in every split) is trained on.
"""

import argparse
import dataclasses
import datetime
import os
import shlex
import sys
import time
from typing import Sequence

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)

from bench import busi_arrays
from bench import cross_site
from bench import results_file
from contracts import configs
from dataset import data_root
from models import registry
from models import training_loop

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


def main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--train-site', metavar='NAME=PATH',
                      help='default: bus_bra=../shared/data/bus_bra')
  parser.add_argument('--test-site', metavar='NAME=PATH',
                      help='default: busi=BUSI as `make run` finds it')
  parser.add_argument('--model', default=configs.ModelConfig.name,
                      choices=registry.MODEL_CHOICES)
  parser.add_argument('--epochs', type=int, default=None,
                      help='default: the model\'s own (lesion_net: 30)')
  parser.add_argument('--output', help='JSON results file (default: bench/results/'
                                       'leave_site_out_<train site>.json)')
  args = parser.parse_args(argv)
  train_site = cross_site.site_flag(args.train_site or f'bus_bra={cross_site.DEFAULT_ROOT}',
                     '--train-site', parser)
  busi_root = data_root.find_data_root('')
  if not args.test_site and busi_root is None:
    raise SystemExit('bench/leave_site_out.py: no BUSI found ($BUSI_DIR, '
                     f'{", ".join(data_root.DEFAULT_DIRS)}): pass --test-site busi=PATH')
  test_site = cross_site.site_flag(args.test_site or f'busi={busi_root}', '--test-site', parser)
  spec = registry.spec(args.model)
  epochs = args.epochs or spec.epochs
  if epochs < 1:
    parser.error(f'--epochs must be at least 1, got {epochs}')
  model_config = configs.ModelConfig(name=args.model, image_size=spec.image_size)
  training_config = dataclasses.replace(configs.TrainingConfig(), epochs=epochs)
  data_config = configs.DataConfig()
  class_names = list(data_config.class_names)
  try:
    data, split = busi_arrays.load_site(train_site, data_config, spec.image_size)
    train_files = {f'{train_site.name}/{f.relpath}': f
                   for f in cross_site.site_files(train_site.root, class_names)}
    other_files = cross_site.site_files(test_site.root, class_names)
  except ValueError as e:
    raise SystemExit(f'bench/leave_site_out.py: {e}') from None
  print(f'{train_site.name}: ' + ', '.join(f'{k} {v.size}' for k, v in split.items()),
        flush=True)
  start = time.monotonic()
  result = training_loop.train(model_config, training_config, class_names,
                               data.subset(split['train']).dataset(),
                               data.subset(split['eval']).dataset())
  train_seconds = time.monotonic() - start
  threshold = result.operating_point.threshold

  test = [i for i in split['test'] if data.relpaths[i] in train_files]
  in_site = cross_site.transfer_row(
      f'{train_site.name} train split', train_site.name, 'test split', threshold,
      [train_files[data.relpaths[i]] for i in test], result.scores(data.images[test]),
      class_names)
  other = cross_site.transfer_row(
      f'{train_site.name} train split', test_site.name, 'all', threshold, other_files,
      result.scores(cross_site.decode(test_site.root, other_files, spec.image_size)),
      class_names)
  table = '\n'.join(cross_site.markdown_rows(in_site) + cross_site.markdown_rows(other)
                    + cross_site.radiologist_rows(in_site) + cross_site.radiologist_rows(other))
  print(table)
  results = {
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
      'command': ' '.join(['python bench/leave_site_out.py', *map(shlex.quote, argv)]),
      'model_config': dataclasses.asdict(model_config),
      'training_config': dataclasses.asdict(training_config),
      'split_sizes': {k: int(v.size) for k, v in split.items()},
      'train_seconds': train_seconds, 'epochs_run': result.epochs_run,
      'best_epoch': result.best_epoch, 'temperature': result.temperature,
      'operating_point': dataclasses.asdict(result.operating_point),
      'rows': [cross_site.plain(dataclasses.asdict(r)) for r in (in_site, other)],
      'table': table,
  }
  output = args.output or os.path.join(RESULTS_DIR,
                                       f'leave_site_out_{train_site.name}.json')
  results_file.write(results, output)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
