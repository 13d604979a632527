"""Which served model a warm-started Trainer starts from, found as the Evaluator finds its baseline.

The served version of TF Serving's model directory (no Resolver, so on any
orchestrator) is the model a scheduled run would replace; its model card says
which family, input size and classes it was trained with. Its weights fit this
run's network only when all three match; otherwise, and when nothing usable is
served, the run trains from the family's initial weights and says why in one
line.
"""

import dataclasses
from typing import Any, Mapping

from serving import model_card
from serving import serving_dir


@dataclasses.dataclass(frozen=True)
class WarmStart:
  # The served version folder to start from; '' trains from the initial weights.
  version_dir: str
  # One line for the log, the run summary and the model card.
  line: str


def _scratch(reason: str) -> WarmStart:
  return WarmStart('', f'Warm start: not possible, {reason}; trained from the '
                       "family's initial weights.")


def _shape(training_config: Mapping[str, Any]) -> str:
  model = training_config.get('model', {})
  return (f'{model.get("name", "an unknown family")} at {model.get("image_size", "?")} px '
          f'for {", ".join(training_config.get("class_names", [])) or "unknown classes"}')


def choose(served_model_dir: str, custom_config: Mapping[str, Any]) -> WarmStart:
  """The served version whose weights fit the network `custom_config` trains.

  `custom_config` is the Trainer's (`PipelineConfig.trainer_custom_config`):
  the model configuration and the class names are compared with the card's.
  """
  try:
    version = serving_dir.served_model_path(served_model_dir) if served_model_dir else None
    if version is None:
      return _scratch('no model is served yet')
    card = model_card.read_card(version)
  except ValueError as error:
    return _scratch(f'the served model cannot be read ({error})')
  if card is None:
    return _scratch(f'the served version {version} has no model card to say what it is')
  served, wanted = card.training_config, dict(custom_config)
  if (served.get('model', {}).get('name') != wanted['model']['name']
      or served.get('model', {}).get('image_size') != wanted['model']['image_size']
      or list(served.get('class_names', [])) != list(wanted['class_names'])):
    return _scratch(f'the served version {card.version} is {_shape(served)}, this run '
                    f'trains {_shape(wanted)}')
  return WarmStart(version, f'Warm start: from served version {card.version} ({version}).')
