"""The invariants of docs/invariants.md as checks on what a run left behind.

Each check reads the disk and the program's output on its own terms (what is
under the data root, the manifest as Python's csv and json modules read it),
not through the code it checks, and fails with what broke.
"""

import contextlib
import csv
import io
import json
import os
import posixpath
from typing import Callable, Dict, Iterator, List, Sequence, Set, Tuple

from dataset import data_audit


def expected_names(root: str, manifest_site: bool) -> Set[str]:
  """Every entry of `root` the audit must name, as the scan's rules count them.

  A class-folder site: each entry beside the class folders, each entry inside
  a (non-hidden, non-link) folder, and such a folder by its name when empty.
  A manifest site: every file, link and hidden entry at any depth, and each
  empty folder. Hidden folders and links are not entered.
  """
  if manifest_site:
    return set(_walk(root, ''))
  found = set()
  for name in os.listdir(root):
    path = os.path.join(root, name)
    if name.startswith('.') or os.path.islink(path) or not os.path.isdir(path):
      found.add(name)
      continue
    inner = os.listdir(path)
    found.update(f'{name}/{entry}' for entry in inner)
    if not inner:
      found.add(name)
  return found


def _walk(root: str, folder: str) -> Iterator[str]:
  entries = os.listdir(os.path.join(root, folder) if folder else root)
  for name in entries:
    relpath = f'{folder}/{name}' if folder else name
    path = os.path.join(root, relpath)
    if name.startswith('.') or os.path.islink(path) or not os.path.isdir(path):
      yield relpath
    elif os.listdir(path):
      yield from _walk(root, relpath)
    else:
      yield relpath


def manifest_rows(root: str, name: str) -> List[Tuple[int, Dict[str, str]]]:
  """(line, column -> value) of every non-blank row, as csv or json read the file."""
  with open(os.path.join(root, name), 'rb') as f:
    text = f.read().decode('utf-8-sig')
  rows = []
  if name.endswith('.jsonl'):
    for line, raw in enumerate(text.splitlines(), start=1):
      try:
        value = json.loads(raw)
      except ValueError:
        continue
      if isinstance(value, dict):
        rows.append((line, {k: str(v or '').strip() for k, v in value.items()}))
    return rows
  reader = csv.reader(io.StringIO(text, newline=''))
  header = next(reader, [])
  for record in reader:
    if any(cell.strip() for cell in record):
      rows.append((reader.line_num, {column: cell.strip()
                                     for column, cell in zip(header, record)}))
  return rows


def check_one_outcome_each(audit: data_audit.DataAudit, expected: Set[str],
                           row_images: Set[str] = frozenset()) -> None:
  """Invariant 1: every entry found is ingested, quarantined or ignored, once.

  `row_images`: the images manifest rows name, which the audit may name
  (quarantined as missing) though they are not on disk.
  """
  entries = [*audit.ingested_files, *audit.quarantined, *audit.ignored]
  named = [n for entry in entries for n in (entry.file, *entry.masks)]
  repeated = {n for n in named if named.count(n) > 1}
  assert not repeated, f'named twice: {sorted(repeated)}'
  outcomes = data_audit.outcomes(audit)
  rows = {n for n in outcomes if ':' in n and n.split(':')[-1].isdigit()}
  missing = expected - set(outcomes)
  assert not missing, f'found on disk, not in the audit: {sorted(missing)}'
  invented = set(outcomes) - expected - rows - row_images - _site_folders(audit)
  assert not invented, f'in the audit, not on disk: {sorted(invented)}'
  for entry in audit.quarantined + audit.ignored:
    assert entry.reason.strip(), f'{entry.file}: no reason given'


def _site_folders(audit: data_audit.DataAudit) -> Set[str]:
  """The entries that stand for a site folder holding nothing usable."""
  return {i.file for i in audit.ignored if 'contributes no image' in i.reason}


def row_images(root: str, name: str, prefix: str = '') -> Set[str]:
  """The images and masks the manifest's rows name, as the audit would name them."""
  named = set()
  for _, values in manifest_rows(root, name):
    paths = [values.get('image', ''), *values.get('mask', '').split(';')]
    named.update(prefix + _normalised(p) for p in paths if p.strip())
  return named


def _normalised(path: str) -> str:
  return posixpath.normpath(path.strip().replace('\\', '/'))


def check_rows_accounted(audit: data_audit.DataAudit, root: str, name: str,
                         prefix: str = '') -> None:
  """Invariant 1 for manifests: each row is quarantined by line or its image has an outcome."""
  outcomes = data_audit.outcomes(audit)
  for line, values in manifest_rows(root, name):
    image = values.get('image', '')
    assert (f'{prefix}{name}:{line}' in outcomes
            or (image and f'{prefix}{_normalised(image)}' in outcomes)), (
                f'{name} line {line} ({image!r}) has no outcome')


def check_one_message(code: int, stderr: str) -> None:
  """Invariant 2: a stop is a message on stderr, an exit code, no traceback."""
  assert 'Traceback' not in stderr, stderr[-3000:]
  assert code in (0, 1, 2), code
  if code:
    assert stderr.strip(), f'exit {code} with nothing on stderr'


def run_main(main: Callable[[Sequence[str]], int], argv: Sequence[str]) -> Tuple[int, str, str]:
  """A program's `main(argv)` in this process: exit code, standard output, standard error."""
  stdout, stderr = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
    try:
      code = main(argv)
    except SystemExit as exit_:
      code = exit_.code
  return code, stdout.getvalue(), stderr.getvalue()
