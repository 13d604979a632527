"""Reads a site through its manifest: one row per image, as hospital exports come.

A manifest (CSV with a header row, or JSON lines) names per image its file,
label and optionally mask file(s), patient, device and the radiologist's
BI-RADS category; `configs.ManifestColumns`
says which columns hold them and how they become paths (BUS-BRA's
`bus_data.csv` names `ID`, and the image is `Images/{ID}.png`).

It is audited as strictly as a class-folder tree: every file under the site's
root is accounted for. Quarantined: a row whose image is missing, whose label
is outside the schema's classes, whose path leaves the root or that is empty;
a second row for the same image (the image itself when the rows disagree on
its label); an image file no row names; a symbolic link. Ignored: hidden
files, the manifest and other files that are not images. A mask of another
size than its image is resized and noted, as in a folder site; a patient filed
under two labels is the data audit's to report (dataset/data_audit.py). A
BI-RADS cell that is not a category is noted and read as none: the image is
still a labelled scan, only the radiologist's reading of it is unusable.
"""

import csv
import dataclasses
import io
import json
import os
import posixpath
import re
from typing import Dict, List, Optional, Sequence, Tuple

from tfx.dsl.io import fileio

from contracts import configs
from contracts import printable
from dataset import image_files

# `{COLUMN}` or `{COLUMN|removeprefix:TEXT}` in a path template.
_PLACEHOLDER = re.compile(r'\{([^{}|]+)(?:\|removeprefix:([^{}]*))?\}')
_MASK_SEPARATOR = ';'
# BI-RADS (ACR, 5th edition): categories 0-6; 4 has the subcategories 4a-4c,
# read as 4 (the biopsy recommendation they share).
_BIRADS = re.compile(r'([0-6])|(4)[abc]', re.IGNORECASE)


class ManifestError(ValueError):
  """The manifest as a whole cannot be read (no such column, not CSV); one line."""


@dataclasses.dataclass(frozen=True)
class ManifestRow:
  line: int                         # 1-based line in the manifest (the header is 1)
  values: Dict[str, str]            # column -> value, '' for a column the row lacks


@dataclasses.dataclass(frozen=True)
class Manifest:
  columns: Tuple[str, ...]          # the header (CSV) or every key seen (JSON lines)
  rows: List[ManifestRow]
  # (line, reason) of lines that are not rows: a JSON line that is not an object.
  bad_lines: List[Tuple[int, str]]


def is_manifest_site(root: str, columns: configs.ManifestColumns) -> bool:
  """A site is read through its manifest when its root holds one."""
  return fileio.exists(os.path.join(root, columns.manifest))


def read(root: str, columns: configs.ManifestColumns) -> Manifest:
  """The manifest's rows; ManifestError when it is unreadable or lacks a column."""
  path = os.path.join(root, columns.manifest)
  try:
    with fileio.open(path, 'rb') as f:
      text = f.read().decode('utf-8-sig')
  except UnicodeDecodeError as e:
    raise ManifestError(f'manifest {path} is not UTF-8 text ({e})') from None
  except Exception as e:  # OSError or TensorFlow's file errors.
    raise ManifestError(f'manifest {path} is unreadable '
                        f'({getattr(e, "message", None) or e})') from None
  if not text.strip():
    raise ManifestError(f'manifest {path} is empty ({len(text.encode())} bytes): '
                        'it names no image; export it again')
  manifest = (_read_json_lines(text) if columns.manifest.endswith('.jsonl')
              else _read_csv(text, path))
  if not manifest.rows:
    raise ManifestError(_no_rows(path, manifest))
  missing = [c for c in _required_columns(columns) if c not in manifest.columns]
  if missing:
    raise ManifestError(
        f'manifest {path} has no column {", ".join(repr(c) for c in missing)} (its '
        f'columns: {", ".join(manifest.columns) or "none"}); pass --manifest-columns '
        f'SITE=PRESET|FILE.json naming its columns (presets: '
        f'{", ".join(configs.MANIFEST_PRESETS)})')
  return manifest


def _no_rows(path: str, manifest: Manifest) -> str:
  """Why a manifest with text in it names no image."""
  if manifest.bad_lines:
    line, reason = manifest.bad_lines[0]
    return (f'manifest {path} has no readable row: all {len(manifest.bad_lines)} '
            f'lines are unreadable (line {line}: {reason})')
  return (f'manifest {path} has a header ({", ".join(manifest.columns) or "empty"}) '
          'but no rows: it names no image; export it again')


def _required_columns(columns: configs.ManifestColumns) -> List[str]:
  """The label, the image template's columns and, when named, BI-RADS's.

  A BI-RADS column is named only to compare the model with the radiologist,
  so a manifest without it is a wrong preset, not a site without readings.
  """
  in_template = [m.group(1) for m in _PLACEHOLDER.finditer(columns.image_template)]
  return list(dict.fromkeys([columns.label, *in_template,
                             *([columns.birads] if columns.birads else [])]))


def _read_csv(text: str, path: str) -> Manifest:
  try:
    reader = csv.reader(io.StringIO(text, newline=''))
    header = next(reader, [])
    rows = [ManifestRow(reader.line_num, {name: (record[i].strip() if i < len(record) else '')
                                          for i, name in enumerate(header)})
            for record in reader if any(cell.strip() for cell in record)]
  except csv.Error as e:
    raise ManifestError(f'manifest {path} is not valid CSV ({e})') from None
  return Manifest(tuple(name.strip() for name in header), rows, [])


def _read_json_lines(text: str) -> Manifest:
  rows, bad, seen = [], [], {}
  for line, raw in enumerate(text.splitlines(), start=1):
    if not raw.strip():
      continue
    try:
      value = json.loads(raw)
    except ValueError as e:
      bad.append((line, f'not a JSON object ({e})'))
      continue
    if not isinstance(value, dict):
      bad.append((line, 'not a JSON object'))
      continue
    seen.update(dict.fromkeys(value))
    rows.append(ManifestRow(line, {k: '' if v is None else str(v).strip()
                                   for k, v in value.items()}))
  return Manifest(tuple(seen), rows, bad)


def expand(template: str, values: Dict[str, str]) -> str:
  """The template with each placeholder replaced; '' when any value is empty."""
  found = []

  def substitute(match: re.Match) -> str:
    value, prefix = values.get(match.group(1), ''), match.group(2)
    if prefix is not None and value.startswith(prefix):
      value = value[len(prefix):]
    found.append(value)
    return value

  expanded = _PLACEHOLDER.sub(substitute, template)
  return expanded if all(found) else ''


def parse_birads(text: str) -> Optional[int]:
  """The BI-RADS category a manifest cell holds; None when it is empty.

  Raises ValueError, saying what is accepted, when the cell holds anything else.
  """
  text = text.strip()
  if not text:
    return None
  match = _BIRADS.fullmatch(text)
  if not match:
    raise ValueError(f'BI-RADS {text!r} is not a category (0 to 6, or 4a, 4b, 4c)')
  return int(match.group(1) or match.group(2))


def _birads_of(row: ManifestRow, columns: configs.ManifestColumns,
               name: str) -> Tuple[Optional[int], Tuple[str, ...]]:
  """The row's BI-RADS category and, for a bad cell, the audit's note."""
  if not columns.birads:
    return None, ()
  try:
    return parse_birads(row.values.get(columns.birads, '')), ()
  except ValueError as e:
    return None, (f'{e} (column {columns.birads!r}, {name} line {row.line}); '
                  'read as no BI-RADS',)


def _path_problem(relpath: str) -> Optional[str]:
  if relpath.startswith('/') or re.match(r'^[A-Za-z]:', relpath):
    return 'an absolute path; manifest paths are relative to the site folder'
  if '..' in relpath.split('/'):
    return 'a path that leaves the site folder (..)'
  if printable.CONTROL_CHARACTER.search(relpath):
    return 'a path with a control character (such as a newline)'
  return None


def _normalised(relpath: str) -> str:
  return posixpath.normpath(relpath.replace('\\', '/'))


def _walk(root: str, folder: str = '') -> List[Tuple[str, str]]:
  """(relpath, kind) of everything under root, not entering hidden folders or links.

  kind: 'file', 'link', 'hidden' (a hidden file or folder) or 'folder' (an empty one).
  """
  found = []
  entries = image_files.entries(os.path.join(root, folder) if folder else root)
  for name in entries:
    relpath = f'{folder}/{name}' if folder else name
    path = os.path.join(root, relpath)
    if name.startswith('.'):
      found.append((relpath, 'hidden'))
    elif os.path.islink(path):
      found.append((relpath, 'link'))
    elif fileio.isdir(path):
      inner = _walk(root, relpath)
      found.extend(inner or [(relpath, 'folder')])
    else:
      found.append((relpath, 'file'))
  return found


def _with_missing_id_notes(images: List[image_files.ImageFile],
                           columns: configs.ManifestColumns,
                           name: str) -> List[image_files.ImageFile]:
  """Notes the images without a patient (device) when other rows name theirs.

  Such an image is its own patient (its own device): kept, but it may share a
  patient with an image in another split, so the audit says so.
  """
  named = {'patient': sum(bool(i.patient_id) for i in images),
           'device': sum(bool(i.device) for i in images)}
  def notes(image: image_files.ImageFile) -> Tuple[str, ...]:
    return tuple(f'no {what} ({column!r} is empty in {name}) while {named[what]} other '
                 f'images name theirs; read as its own {what}'
                 for what, column, value in (('patient', columns.patient, image.patient_id),
                                             ('device', columns.device, image.device))
                 if column and not value and named[what])
  return [dataclasses.replace(i, notes=(*i.notes, *notes(i))) for i in images]


def scan_manifest(root: str, columns: configs.ManifestColumns,
                  class_names: Sequence[str]) -> image_files.FolderScan:
  """The images the manifest names, and every other file with its outcome.

  Raises ManifestError when the manifest itself cannot be read.
  """
  manifest = read(root, columns)
  name = columns.manifest
  on_disk = dict(_walk(root))
  quarantined: List[image_files.ExcludedFile] = [
      image_files.ExcludedFile(f'{name}:{line}', reason)
      for line, reason in manifest.bad_lines]
  by_image: Dict[str, List[ManifestRow]] = {}
  masks_of: Dict[str, Tuple[str, ...]] = {}
  for row in manifest.rows:
    image = expand(columns.image_template, row.values)
    masks = tuple(_normalised(m) for m in
                  expand(columns.mask_template, row.values).split(_MASK_SEPARATOR)
                  if m.strip())
    reason = (f'no image: column {columns.image!r} is empty' if not image
              else _path_problem(image) or next(filter(None, map(_path_problem, masks)), None))
    if reason:
      quarantined.append(image_files.ExcludedFile(f'{name}:{row.line}', f'row names {reason}'))
      continue
    image = _normalised(image)
    by_image.setdefault(image, []).append(row)
    masks_of.setdefault(image, masks)
  images: List[image_files.ImageFile] = []
  named = set()
  for image, rows in sorted(by_image.items()):
    first = rows[0]
    masks = masks_of[image]
    named.update((image, *masks))
    labels = sorted({row.values.get(columns.label, '') for row in rows})
    if len(labels) > 1:
      quarantined.append(image_files.ExcludedFile(
          image, f'listed on {name} lines {", ".join(str(r.line) for r in rows)} under '
          f'different labels ({", ".join(labels)})', masks))
      continue
    quarantined.extend(image_files.ExcludedFile(
        f'{name}:{row.line}', f'duplicate row: names {image} again (first on line '
        f'{first.line})') for row in rows[1:])
    label = labels[0]
    if on_disk.get(image) != 'file':
      what = 'a symbolic link' if on_disk.get(image) == 'link' else 'missing'
      quarantined.append(image_files.ExcludedFile(
          image, f'listed on {name} line {first.line} but {what}', masks))
    elif not image_files.is_image_name(image):
      quarantined.append(image_files.ExcludedFile(
          image, f'not an image file name (listed on {name} line {first.line})', masks))
    elif label not in class_names:
      quarantined.append(image_files.ExcludedFile(
          image, f'label {label!r} on {name} line {first.line} is not a known class '
          f'({", ".join(class_names)})', masks))
    else:
      birads, notes = _birads_of(first, columns, name)
      images.append(image_files.ImageFile(
          image, label, masks,
          patient_id=first.values.get(columns.patient, '') if columns.patient else '',
          device=first.values.get(columns.device, '') if columns.device else '',
          birads=birads, notes=notes))
  images = _with_missing_id_notes(images, columns, name)
  ignored: List[image_files.ExcludedFile] = []
  for relpath, kind in sorted(on_disk.items()):
    if relpath in named:
      continue
    if kind == 'hidden':
      ignored.append(image_files.ExcludedFile(relpath, 'hidden file or folder'))
    elif kind == 'link':
      quarantined.append(image_files.ExcludedFile(
          relpath, 'symbolic link; links are not followed'))
    elif kind == 'folder':
      ignored.append(image_files.ExcludedFile(relpath, 'empty folder'))
    elif relpath == name:
      ignored.append(image_files.ExcludedFile(relpath, 'the site\'s manifest'))
    elif image_files.is_image_name(relpath):
      quarantined.append(image_files.ExcludedFile(
          relpath, f'image not listed in {name} (neither an image nor a mask of a row)'))
    else:
      ignored.append(image_files.ExcludedFile(relpath, 'not an image, not in the manifest'))
  return image_files.FolderScan(images, quarantined, ignored)
