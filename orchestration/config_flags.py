"""The command-line flag behind each config value, for the runners' error lines.

The config dataclasses check their own values (`configs.ConfigError` names the
field, e.g. `training.epochs`); both runners set those fields from flags of the
same names, so a rejected value is reported as the flag the user typed.
"""

from typing import Callable, Optional, Tuple, TypeVar

from contracts import configs

Built = TypeVar('Built')

FLAG_OF_FIELD = {
    'model.image_size': '--image-size',
    'model.ensemble_size': '--ensemble-size', 'training.epochs': '--epochs',
    'training.batch_size': '--batch-size', 'evaluation.min_accuracy': '--min-accuracy',
    'evaluation.min_malignant_recall': '--min-malignant-recall',
    'evaluation.regression_tolerance': '--regression-tolerance',
    'evaluation.min_site_malignant_examples': '--min-site-malignant-examples',
    'evaluation.slice_by_device': '--slice-by-device',
    'keep_served_versions': '--keep-versions',
    'data.max_quarantined_fraction': '--max-quarantined-fraction',
    'data.label_conflicts': '--label-conflicts',
    'data.sites': '--data-root',
    'data.manifest_columns': '--manifest-columns',
    **{f'data.splits.{name}': '--splits' for name in ('train', 'eval', 'test')},
}


def config_or_message(program: str, build: Callable[[], Built]
                      ) -> Tuple[Optional[Built], Optional[str]]:
  """(what `build` returns, None), or (None, one line naming the flag at fault).

  A field no flag sets is named as the config field itself.
  """
  try:
    return build(), None
  except configs.ConfigError as e:
    return None, f'{program}: error: {FLAG_OF_FIELD.get(e.field, e.field)} {e.message}'
