"""Renders a page in headless Chromium and collects what its console reported.

Chromium comes from the system packages (`apt-get install chromium`). Network
access is cut off by resolving every host to nothing, so a page that tries to
fetch anything logs a console error instead of quietly succeeding.
"""

import os
import re
import shutil
import subprocess
import tempfile
from typing import List, Optional

import pytest

_BINARIES = ('chromium', 'chromium-browser', 'google-chrome')
_CONSOLE = re.compile(r':CONSOLE[:(]\d+\)?\] (.*)')


def find_chromium() -> Optional[str]:
  return next((path for path in map(shutil.which, _BINARIES) if path), None)


def require_chromium() -> str:
  """The binary; outside CI a missing one skips the test, in CI it fails it."""
  binary = find_chromium()
  if binary is None:
    message = 'Chromium is not installed (apt-get install chromium)'
    if os.environ.get('CI') == 'true':
      pytest.fail(message + '; CI must run the browser test.')
    pytest.skip(message)
  return binary


def screenshot(html_path: str, png_path: str, width: int = 1200,
               height: int = 2400) -> List[str]:
  """Renders `html_path` into `png_path`; returns the console messages."""
  binary = require_chromium()
  with tempfile.TemporaryDirectory() as profile:
    result = subprocess.run(
        [binary, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
         '--disable-background-networking', '--disable-component-update',
         '--disable-sync', f'--user-data-dir={profile}', '--enable-logging=stderr',
         '--v=0', '--host-resolver-rules=MAP * ~NOTFOUND',
         f'--window-size={width},{height}', f'--screenshot={png_path}',
         'file://' + os.path.abspath(html_path)],
        capture_output=True, text=True, timeout=120, check=False)
  if result.returncode != 0 or not os.path.exists(png_path):
    raise RuntimeError(f'Chromium failed ({result.returncode}): {result.stderr[-2000:]}')
  return [m.group(1) for m in map(_CONSOLE.search, result.stderr.splitlines()) if m]
