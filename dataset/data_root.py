"""Where BUSI is when no folder is named: one rule for the runner, benches and tests.

`$BUSI_DIR` first, then the default folders relative to the working directory
(`make` runs in the checkout): `data/` inside the checkout, as the README
describes, and a data folder shared by checkouts that sit side by side.

A `$BUSI_DIR` that is set is the only place looked at: one that is not a
folder is a mistake to report, not a reason to train on whatever a default
folder holds. And one that a `--data-root` overrides is said to be unused.
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
  """The absolute path of `explicit`, else of `$BUSI_DIR` when set, else of the
  first default that exists; None if that one is not a folder."""
  configured = explicit or os.environ.get(ENV_VAR)
  candidates = [configured] if configured else DEFAULT_DIRS
  return next((os.path.abspath(c) for c in candidates if os.path.isdir(c)), None)


def not_found_message(explicit: Optional[str] = None) -> str:
  """Why `find_data_root(explicit)` found nothing, and how to get BUSI."""
  if explicit:
    return f'--data-root {explicit!r} is not a folder.'
  configured = os.environ.get(ENV_VAR)
  if configured:
    what = 'is a file' if os.path.exists(configured) else 'does not exist'
    return (f'${ENV_VAR} is {configured!r}, which {what}: point it at the folder that '
            f'holds benign/, malignant/, normal/, or unset it to use {DEFAULT_DIRS[0]} '
            '(the default folders are not looked at while it is set).')
  return (f'No dataset found (looked at: ${ENV_VAR}, {", ".join(DEFAULT_DIRS)}).\n'
          f'Download BUSI (Dataset_BUSI_with_GT) from {DOWNLOAD_URL}, unpack it to '
          f'{DEFAULT_DIRS[0]} or set {ENV_VAR}, or pass --data-root.')


def unused_location_note(flag_given: bool) -> Optional[str]:
  """Why `$BUSI_DIR` is not read when a flag names the data, or None if it is unset."""
  configured = os.environ.get(ENV_VAR)
  if not (flag_given and configured):
    return None
  return f'${ENV_VAR} ({configured}) is not read: --data-root names the data.'
