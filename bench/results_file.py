"""Where a benchmark's JSON goes: one writer, so every bench/results file is made alike."""

import json
import os
from typing import Any, Mapping


def write(results: Mapping[str, Any], path: str) -> None:
  """Writes `results` to `path` (its folder made if missing) and says where."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(results, f, indent=1)
  print(f'Wrote {path}')
