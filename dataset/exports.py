"""Dated exports: a site that grows by whole exports, each in its own folder.

A hospital rarely re-sends everything: each month's export is a new folder.
A site whose root holds `exports/` is read as its dated exports,
`exports/2026-11/`, `exports/2026-12/`, ..., each laid out as any site is (class
folders or a manifest). This is TFX's span idea in our terms: a run reads all
the exports or only the newest N, and the date in the folder name orders them
(`YYYY-MM` or `YYYY-MM-DD`, so name order is date order). The export is part
of every image's name (`exports/2026-11/benign/x.png`, after the site), so the
examples, the audit and the model card say which export each image came from.

Why one folder per export under `exports/` rather than dated folders beside
the class folders: a site is then either a plain layout or a series of them,
never both, and an export is checked with the very rules of a plain site.

An image sent again in a later export (the same bytes, under the same label)
is one image: it is read from the earliest export that has it, and the later
copies are listed as ignored. Near-duplicates across exports are grouped by
the usual rules, and the split ledger keeps images in their splits whatever
export they come from next time.
"""

import collections
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from tfx.dsl.io import fileio

from dataset import image_files

EXPORTS_FOLDER = 'exports'
EXPORT_NAME = re.compile(r'\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?')
# An export in a run-level relpath: after the site's prefix, if any.
_IN_RELPATH = re.compile(r'^(?:(?P<site>[a-z0-9_]+)/)?' + EXPORTS_FOLDER
                         + r'/(?P<export>\d{4}-\d{2}(?:-\d{2})?)/')


def is_export_site(root: str) -> bool:
  """Whether `root` is read as dated exports: it holds an `exports/` folder."""
  return fileio.isdir(f'{root.rstrip("/")}/{EXPORTS_FOLDER}')


def export_names(root: str) -> List[str]:
  """The dated exports of an export site, oldest first."""
  folder = f'{root.rstrip("/")}/{EXPORTS_FOLDER}'
  return sorted(name for name in image_files.entries(folder)
                if EXPORT_NAME.fullmatch(name) and fileio.isdir(f'{folder}/{name}'))


def chosen(root: str, newest: int) -> List[str]:
  """The exports a run reads: all (`newest` 0), else the newest `newest`, oldest first."""
  names = export_names(root)
  return names[-newest:] if newest else names


def export_root(root: str, name: str) -> str:
  return f'{root.rstrip("/")}/{EXPORTS_FOLDER}/{name}'


def layout_problem(root: str, site_entries: Sequence[str]) -> Optional[str]:
  """Why an export site's own layout cannot be read, or None.

  Args:
    root: the site's folder, which holds `exports/`.
    site_entries: the names beside `exports/` that a plain site would read
      (class folders, the manifest): an export site must hold none, or they
      would be silently left out.
  """
  if site_entries:
    return (f'data root {root} holds {EXPORTS_FOLDER}/ and also '
            f'{", ".join(sorted(site_entries))}: move them into a dated export '
            f'({EXPORTS_FOLDER}/YYYY-MM/) or remove {EXPORTS_FOLDER}/')
  folder = f'{root.rstrip("/")}/{EXPORTS_FOLDER}'
  for name in image_files.entries(folder):
    path = f'{folder}/{name}'
    if name.startswith('.') or not fileio.isdir(path):
      continue
    if os.path.islink(path):
      return f'{path} is a symbolic link; links are not followed: copy the export there'
    if not EXPORT_NAME.fullmatch(name):
      return (f'{path} is not named as a dated export (YYYY-MM or YYYY-MM-DD, e.g. '
              f'2026-11): rename it or move it out of {EXPORTS_FOLDER}/')
  if not export_names(root):
    return f'{folder} holds no dated export (a folder named YYYY-MM or YYYY-MM-DD)'
  return None


def within(scan: image_files.FolderScan, name: str) -> image_files.FolderScan:
  """The scan of export `name` under its site's names: `exports/<name>/...`.

  The site itself is set when the site's whole scan is named (`with_site`).
  """
  return image_files.with_site(scan, '', f'{EXPORTS_FOLDER}/{name}/')


def not_read(root: str, newest: int) -> List[image_files.ExcludedFile]:
  """What a run does not read of an export site, as the audit lists it (ignored):
  the files beside `exports/` and beside the exports, and the older exports."""
  folder = f'{root.rstrip("/")}/{EXPORTS_FOLDER}'
  names = export_names(root)
  older = names[:-newest] if newest else []
  return ([image_files.ExcludedFile(name, f'beside {EXPORTS_FOLDER}/: only the dated '
                                          'exports are read')
           for name in image_files.entries(root)
           if name != EXPORTS_FOLDER and not name.startswith('.')]
          + [image_files.ExcludedFile(f'{EXPORTS_FOLDER}/{name}',
                                      'not a dated export: not read')
             for name in image_files.entries(folder)
             if name not in names and not name.startswith('.')]
          + [image_files.ExcludedFile(
                 f'{EXPORTS_FOLDER}/{name}',
                 f'older than the newest {newest} exports read (--newest-exports {newest})')
             for name in older])


def export_of(relpath: str) -> str:
  """The export a run-level relpath came from (`site/2026-11`, or `2026-11` for
  the default site); '' for an image of a site without exports."""
  match = _IN_RELPATH.match(relpath)
  return '/'.join(filter(None, match.group('site', 'export'))) if match else ''


def first_copies(fingerprints: Sequence[image_files.ImageFingerprint]
                 ) -> Tuple[List[image_files.ImageFingerprint],
                            List[image_files.ExcludedFile]]:
  """The images to read, and the copies later exports sent again (to ignore).

  An image with the same bytes and label as one of an earlier export of the
  same site is the same image sent again: only the earliest is read. Copies
  within one export, or under another label, are left to the near-duplicate
  and label-conflict rules.
  """
  first: Dict[Tuple[str, str, str], image_files.ImageFingerprint] = {}
  kept, repeated = [], []
  for fp in sorted(fingerprints, key=lambda f: (export_of(f.relpath), f.relpath)):
    key = (fp.site, fp.sha256, fp.label)
    earlier = first.setdefault(key, fp)
    if earlier is not fp and export_of(earlier.relpath) != export_of(fp.relpath):
      repeated.append(image_files.ExcludedFile(
          fp.relpath, f'same image as {earlier.relpath} of an earlier export; read once',
          fp.mask_relpaths))
    else:
      kept.append(fp)
  return kept, repeated


def counts(ingested: Sequence[str]) -> Dict[str, int]:
  """Export -> ingested images, for the images of sites read as exports."""
  return dict(sorted(collections.Counter(filter(None, map(export_of, ingested))).items()))
