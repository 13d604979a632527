"""Where BUSI is when no folder is named: one rule for the runner, benches and tests.

`$BUSI_DIR` first, then the default folders relative to the working directory
(`make` runs in the checkout): `data/` inside the checkout, as the README
describes, and a data folder shared by checkouts that sit side by side.
"""

import os
from typing import Optional, Tuple

ENV_VAR = 'BUSI_DIR'
DEFAULT_DIRS: Tuple[str, ...] = (
    'data/Dataset_BUSI_with_GT',
    '../shared/data/busi/Dataset_BUSI_with_GT',
)
DOWNLOAD_URL = 'https://scholar.cu.edu.eg/?q=afahmy/pages/dataset'


def find_data_root(explicit: Optional[str] = None) -> Optional[str]:
  """The absolute path of `explicit`, or of the first default that exists; None if none."""
  candidates = [explicit] if explicit else [os.environ.get(ENV_VAR), *DEFAULT_DIRS]
  for candidate in candidates:
    if candidate and os.path.isdir(candidate):
      return os.path.abspath(candidate)
  return None


def not_found_message(explicit: Optional[str] = None) -> str:
  """Why `find_data_root(explicit)` found nothing, and how to get BUSI."""
  if explicit:
    return f'--data-root {explicit!r} is not a folder.'
  return (f'No dataset found (looked at: ${ENV_VAR}, {", ".join(DEFAULT_DIRS)}).\n'
          f'Download BUSI (Dataset_BUSI_with_GT) from {DOWNLOAD_URL}, unpack it to '
          f'{DEFAULT_DIRS[0]} or set {ENV_VAR}, or pass --data-root.')
