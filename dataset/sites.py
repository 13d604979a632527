"""The sites a run reads: one bare data root, or several named sites.

The runners parse `--data-root [NAME=]PATH` and `--manifest-columns` into
`configs.Site`s (orchestration/config_flags.py); this module decides how they
sit in the `DataConfig`, `layout_problem` is the check the runners and
ImageExampleGen share before reading a site, and `scan` reads it.
"""

import dataclasses
import os
from typing import Optional, Sequence

from tfx.dsl.io import fileio

from contracts import configs
from dataset import exports
from dataset import image_files
from dataset import manifest

# The flag that chooses a site's manifest columns, named in `layout_problem`'s advice.
COLUMNS_FLAG = '--manifest-columns'


def with_sites(data: configs.DataConfig,
               sites: Sequence[configs.Site]) -> configs.DataConfig:
  """`data` reading `sites`: one plain default site stays the bare `data_root`.

  The bare data root is what the `data_root` run parameter overrides
  (pipeline/run_parameters.py); named sites are fixed when the DAG is built.
  """
  if (len(sites) == 1 and sites[0].name == configs.DEFAULT_SITE
      and sites[0].columns == configs.ManifestColumns()):
    return dataclasses.replace(data, data_root=sites[0].root, sites=())
  return dataclasses.replace(data, data_root='', sites=tuple(sites))


def layout_problem(site: configs.Site, class_names: Sequence[str],
                   newest_exports: int = 0) -> Optional[str]:
  """Why the site cannot be read at all, or None.

  A site with `exports/` is read as its dated exports (dataset/exports.py),
  each export checked as a site of its own; a site with its manifest is read
  through it; any other is a class-folder tree, and one that holds no class
  folder but a preset's manifest is told which `--manifest-columns` reads it.
  """
  if exports.is_export_site(site.root):
    beside = [name for name in (*class_names, site.columns.manifest)
              if fileio.exists(os.path.join(site.root, name))]
    problem = exports.layout_problem(site.root, beside)
    if problem:
      return problem
    for name in exports.chosen(site.root, newest_exports):
      problem = _plain_layout_problem(
          dataclasses.replace(site, root=exports.export_root(site.root, name)), class_names)
      if problem:
        return f'export {name}: {problem}'
    return None
  return _plain_layout_problem(site, class_names)


def scan(site: configs.Site, class_names: Sequence[str],
         newest_exports: int = 0) -> image_files.FolderScan:
  """The site's images and excluded files, named relative to its root.

  Call after `layout_problem` found none.
  """
  if not exports.is_export_site(site.root):
    return _plain_scan(site.root, site.columns, class_names)
  scans = [exports.within(_plain_scan(exports.export_root(site.root, name), site.columns,
                                      class_names), name)
           for name in exports.chosen(site.root, newest_exports)]
  return image_files.FolderScan(
      images=[i for s in scans for i in s.images],
      quarantined=[q for s in scans for q in s.quarantined],
      ignored=[*(i for s in scans for i in s.ignored),
               *exports.not_read(site.root, newest_exports)])


def _plain_scan(root: str, columns: configs.ManifestColumns,
                class_names: Sequence[str]) -> image_files.FolderScan:
  return (manifest.scan_manifest(root, columns, class_names)
          if manifest.is_manifest_site(root, columns)
          else image_files.scan_folder(root, class_names))


def _plain_layout_problem(site: configs.Site, class_names: Sequence[str]) -> Optional[str]:
  if manifest.is_manifest_site(site.root, site.columns):
    try:
      manifest.read(site.root, site.columns)
    except manifest.ManifestError as e:
      return str(e)
    return None
  problem = image_files.layout_problem(site.root, class_names)
  if problem or any(fileio.isdir(os.path.join(site.root, name)) for name in class_names):
    return problem
  for preset, columns in configs.MANIFEST_PRESETS.items():
    if columns != site.columns and manifest.is_manifest_site(site.root, columns):
      return (f'data root {site.root} holds no class folder ({", ".join(class_names)}) '
              f'and no {site.columns.manifest}, but {columns.manifest}: pass '
              f'{COLUMNS_FLAG} {site.name}={preset}')
  return None
