"""The runners' `--data-root [NAME=]PATH` and `--manifest-columns NAME=PRESET|FILE.json`.

Both flags repeat, one per site, so one run can read several hospitals. A bare
PATH is the site named `default`; a run with that one site reads as a run did
before sites existed (same relpaths, same split plan). Every mistake is one
`SiteSpecError` line naming the flag: an invalid or repeated name, a second
bare path, columns for a site no `--data-root` names, an unknown preset, a
columns file that is not a JSON object of `ManifestColumns` fields.
`layout_problem` is the check the runners and ImageExampleGen share before
reading a site.
"""

import dataclasses
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

from tfx.dsl.io import fileio

from contracts import configs
from dataset import image_files
from dataset import manifest

DATA_ROOT_FLAG = '--data-root'
COLUMNS_FLAG = '--manifest-columns'


class SiteSpecError(ValueError):
  """A `--data-root` or `--manifest-columns` value the run cannot use; one line."""


def parse_site_spec(text: str) -> Tuple[str, str]:
  """(site name, path) of `NAME=PATH`, or (`default`, PATH) of a bare PATH.

  Text before the first `=` that holds no path separator is a name (so
  `Busi=/data` is refused for its capital, not read as a folder called
  `Busi=`); a path with `=` in a folder name stays a bare path.
  """
  name, sep, path = text.partition('=')
  if not sep or os.sep in name or (os.altsep and os.altsep in name):
    if not text:
      raise SiteSpecError(f'{DATA_ROOT_FLAG} needs a folder, got an empty value')
    return configs.DEFAULT_SITE, text
  if not configs.SITE_NAME_PATTERN.fullmatch(name):
    raise SiteSpecError(f'{DATA_ROOT_FLAG} {text!r}: site names are lower-case letters, '
                        'digits and _ (e.g. bus_bra=PATH)')
  if not path:
    raise SiteSpecError(f'{DATA_ROOT_FLAG} {text!r}: site {name!r} needs a folder after =')
  return name, path


def parse_site_specs(texts: Sequence[str]) -> List[Tuple[str, str]]:
  """The (name, path) of every `--data-root`, in the order given; names distinct."""
  parsed = [parse_site_spec(text) for text in texts]
  seen: Dict[str, str] = {}
  for (name, path), text in zip(parsed, texts):
    if name in seen:
      hint = (f'; a bare folder is the site {configs.DEFAULT_SITE!r}, name the others '
              'NAME=PATH' if name == configs.DEFAULT_SITE else '')
      raise SiteSpecError(f'{DATA_ROOT_FLAG}: site {name!r} given twice ({seen[name]!r} '
                          f'and {text!r}){hint}')
    seen[name] = text
  return parsed


def parse_columns_spec(text: str) -> Tuple[str, configs.ManifestColumns]:
  """(site name, columns) of `NAME=PRESET` or `NAME=FILE.json`."""
  name, sep, value = text.partition('=')
  if not sep or not value:
    raise SiteSpecError(f'{COLUMNS_FLAG} takes NAME=PRESET or NAME=FILE.json (presets: '
                        f'{", ".join(configs.MANIFEST_PRESETS)}), got {text!r}')
  if value in configs.MANIFEST_PRESETS:
    return name, configs.MANIFEST_PRESETS[value]
  if not value.endswith('.json'):
    raise SiteSpecError(f'{COLUMNS_FLAG} {text!r}: {value!r} is neither a preset ('
                        f'{", ".join(configs.MANIFEST_PRESETS)}) nor a .json file')
  try:
    with open(value, encoding='utf-8') as f:
      values = json.load(f)
  except (OSError, ValueError) as e:
    raise SiteSpecError(f'{COLUMNS_FLAG} {text!r}: cannot read {value} ({e})') from None
  if not isinstance(values, dict):
    raise SiteSpecError(f'{COLUMNS_FLAG} {text!r}: {value} must hold a JSON object of '
                        'ManifestColumns fields')
  try:
    return name, configs.ManifestColumns.from_dict(
        dict(dataclasses.asdict(configs.ManifestColumns()), **values))
  except configs.ConfigError as e:
    raise SiteSpecError(f'{COLUMNS_FLAG} {text!r}: {value}: {e.message}') from None
  except TypeError as e:
    raise SiteSpecError(f'{COLUMNS_FLAG} {text!r}: {value}: {e}') from None


def build_sites(site_texts: Sequence[str], columns_texts: Sequence[str]
                ) -> Tuple[configs.Site, ...]:
  """The sites of the flags, each with its columns (the default preset if none)."""
  specs = parse_site_specs(site_texts)
  names = [name for name, _ in specs]
  columns: Dict[str, configs.ManifestColumns] = {}
  for text in columns_texts:
    name, site_columns = parse_columns_spec(text)
    if name not in names:
      raise SiteSpecError(f'{COLUMNS_FLAG} {text!r}: no {DATA_ROOT_FLAG} names site '
                          f'{name!r} (sites: {", ".join(names)})')
    if name in columns:
      raise SiteSpecError(f'{COLUMNS_FLAG}: site {name!r} given columns twice')
    columns[name] = site_columns
  return tuple(configs.Site(name, path, columns.get(name, configs.ManifestColumns()))
               for name, path in specs)


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


def layout_problem(site: configs.Site, class_names: Sequence[str]) -> Optional[str]:
  """Why the site cannot be read at all, or None.

  A site with its manifest is read through it; any other is a class-folder
  tree, and one that holds no class folder but a preset's manifest is told
  which `--manifest-columns` reads it.
  """
  if manifest.is_manifest_site(site.root, site.columns):
    return manifest.problem(site.root, site.columns)
  problem = image_files.layout_problem(site.root, class_names)
  if problem or any(fileio.isdir(os.path.join(site.root, name)) for name in class_names):
    return problem
  for preset, columns in configs.MANIFEST_PRESETS.items():
    if columns != site.columns and manifest.is_manifest_site(site.root, columns):
      return (f'data root {site.root} holds no class folder ({", ".join(class_names)}) '
              f'and no {site.columns.manifest}, but {columns.manifest}: pass '
              f'{COLUMNS_FLAG} {site.name}={preset}')
  return None
