"""The command-line flag behind each config value, for the runners' error lines.

The config dataclasses check their own values (`configs.ConfigError` names the
field, e.g. `training.epochs`); both runners set those fields from flags of the
same names, so a rejected value is reported as the flag the user typed.
"""

import argparse
from typing import Callable, Optional, Tuple, TypeVar

from contracts import configs

Built = TypeVar('Built')

FLAG_OF_FIELD = {
    'model.image_size': '--image-size',
    'training.epochs': '--epochs',
    'training.batch_size': '--batch-size', 'evaluation.min_accuracy': '--min-accuracy',
    'evaluation.min_malignant_recall': '--min-malignant-recall',
    'evaluation.regression_tolerance': '--regression-tolerance',
    'evaluation.min_site_malignant_examples': '--min-site-malignant-examples',
    'evaluation.slice_by_device': '--slice-by-device',
    'keep_served_versions': '--keep-versions',
    'data.max_quarantined_fraction': '--max-quarantined-fraction',
    'data.label_conflicts': '--label-conflicts',
    'data.drift_policy': '--drift-policy',
    'data.sites': '--data-root',
    'data.manifest_columns': '--manifest-columns',
    **{f'data.splits.{name}': '--splits' for name in ('train', 'eval', 'test')},
}


def add_evaluation_flags(parser) -> None:
  """Adds the blessing flags to `parser` (a parser or an argument group).

  Both runners take the same flags; `evaluation_config` reads them.
  """
  defaults = configs.EvaluationConfig()
  parser.add_argument('--min-accuracy', type=float, default=defaults.min_accuracy,
                      help=f'floor on test accuracy (default {defaults.min_accuracy})')
  parser.add_argument('--min-malignant-recall', type=float,
                      default=defaults.min_malignant_recall,
                      help='floor on malignant sensitivity '
                           f'(default {defaults.min_malignant_recall})')
  parser.add_argument('--regression-tolerance', type=float,
                      default=defaults.regression_tolerance,
                      help='how far below the served model a candidate may fall')
  parser.add_argument('--min-site-malignant-examples', type=int,
                      default=defaults.min_site_malignant_examples,
                      help='a site with at least this many malignant test scans must '
                           'meet --min-malignant-recall and not regress there '
                           f'(default {defaults.min_site_malignant_examples})')
  parser.add_argument('--slice-by-device', action='store_true',
                      help='also evaluate per scanner (device) and per site x device')


def evaluation_config(args: argparse.Namespace) -> configs.EvaluationConfig:
  """The blessing rules of `add_evaluation_flags`' flags; the config checks them."""
  return configs.EvaluationConfig(
      min_accuracy=args.min_accuracy, min_malignant_recall=args.min_malignant_recall,
      regression_tolerance=args.regression_tolerance,
      min_site_malignant_examples=args.min_site_malignant_examples,
      slice_by_device=args.slice_by_device)


def config_or_message(program: str, build: Callable[[], Built]
                      ) -> Tuple[Optional[Built], Optional[str]]:
  """(what `build` returns, None), or (None, one line naming the flag at fault).

  A field no flag sets is named as the config field itself.
  """
  try:
    return build(), None
  except configs.ConfigError as e:
    return None, f'{program}: error: {FLAG_OF_FIELD.get(e.field, e.field)} {e.message}'
