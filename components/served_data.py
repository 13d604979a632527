"""What the served model was trained on, read through its version folder.

A retraining run asks two things of the data behind the model TF Serving
serves now, and finds them as the Evaluator finds its baseline (the served
version of TF Serving's model directory, no Resolver, so on any orchestrator):
its split ledger, so that images keep their splits (dataset/split_ledger.py),
and its fingerprint, so that a run on the very same data, code, training
configuration and blessing rules is skipped. The model card (components/model_card.py) records
both: the examples it was trained on and ImageExampleGen's data fingerprint.
"""

import json
from typing import Any, Dict, Mapping, Optional

from absl import logging

from components.image_example_gen import driver
from contracts import configs
from dataset import split_ledger
from serving import model_card
from serving import serving_dir


def served_card(model_dir: str) -> Optional[model_card.ModelCard]:
  """The served version's model card; None when nothing is served or it has none."""
  version = serving_dir.served_model_path(model_dir) if model_dir else None
  return model_card.read_card(version) if version else None


def ledger(model_dir: str) -> Dict[str, str]:
  """The split ledger of the data the served model was trained on; empty for none."""
  if not model_dir or serving_dir.served_model_path(model_dir) is None:
    return {}
  card = served_card(model_dir)
  found = split_ledger.read(card.data.examples_uri) if card and card.data.examples_uri else {}
  if not found:
    logging.warning('The served version in %s names no split ledger of its training '
                    'data, so splits are planned afresh and images it was trained on '
                    'may now be in eval or test.', model_dir)
  return found


def data_fingerprint(data: configs.DataConfig) -> str:
  """ImageExampleGen's fingerprint of the configured data (its driver's, not a copy)."""
  return driver.data_fingerprint(data.data_root, data.sites)


def unchanged_since_served(model_dir: str, fingerprint: str,
                           training_config: Mapping[str, Any],
                           floors: Mapping[str, float],
                           regression_tolerance: float) -> Optional[str]:
  """One line saying why nothing is to be done, or None when the run should go on.

  Nothing is to be done when the served version was trained on data with the
  same fingerprint, by the same code (the card's code fingerprint), with the
  same training configuration (the Trainer's `custom_config` with its epochs,
  which fingerprints the model code too) and blessed under the same floors and
  regression tolerance: such a run would train the same model again and
  judge it by the same rules.
  """
  card = served_card(model_dir)
  if (card is None or card.data.fingerprint != fingerprint
      or card.code_fingerprint != model_card.code_fingerprint()
      or card.training_config != json.loads(json.dumps(dict(training_config), sort_keys=True))
      or card.floors != dict(floors) or card.regression_tolerance != regression_tolerance):
    return None
  return (f'No new data: version {card.version} in service was trained on this very '
          f'data with this code and configuration (run {card.run_id or "unknown"}); '
          'nothing retrained or pushed.')
