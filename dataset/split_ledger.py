"""The split ledger: which split every image of a run's data went to, by content.

ImageExampleGen writes it beside its splits; the next run reads the ledger of
the data the served model was trained on (through the served version's model
card, as the Evaluator finds its baseline) and keeps every image it lists in
that split. Images are named by their content's sha256, so a renamed or moved
file, or a copy under another site, is still the same image.

Why a ledger and not a rule on the data alone: a rule f that maps a group of
images to a split and never moves old images must give f({a}) = f({a, x}) =
f({x}) whenever a new image x joins a's group. Since any two scans may turn out
to be near-duplicates of a third, such a rule would put every image in one
split. Stability when a group grows, or loses the member a rule keyed on,
needs to know which images are old: the ledger. The served version is the one
record every orchestrator can read (Kubeflow has no local state), so the
ledger is found through it. A ledger carries over the images it lists that the
new data lacks, so an image removed and later exported again returns to its
split.
"""

import json
import os
from typing import Dict, Mapping

from tfx.dsl.io import fileio

LEDGER_FILE = 'split_ledger.json'


def write(ledger: Mapping[str, str], folder: str) -> None:
  """Writes sha256 -> split to `folder`/split_ledger.json."""
  with fileio.open(os.path.join(folder, LEDGER_FILE), 'w') as f:
    f.write(json.dumps({'splits': dict(sorted(ledger.items()))}, indent=0) + '\n')


def read(folder: str) -> Dict[str, str]:
  """sha256 -> split of the ledger in `folder`; empty when there is none."""
  path = os.path.join(folder, LEDGER_FILE)
  if not fileio.exists(path):
    return {}
  with fileio.open(path, 'r') as f:
    return dict(json.loads(f.read())['splits'])
