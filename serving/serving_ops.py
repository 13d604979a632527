"""Which pushed version TF Serving serves: listing, rollback, promotion, the log.

The versions on disk are only candidates; `models.config` says which ones are
served and under which label (serving/serving_config.py). Every change
rewrites that one file, so it is atomic on local disks and object stores, and
moves no model files; each change adds a line to `serving_log.jsonl` beside
it, saying what was served before and after, and when.
"""

import dataclasses
import json
import os
from typing import Callable, Dict, List, Optional, Tuple

from tfx.dsl.io import fileio

from contracts import serving
from serving import model_card
from serving import serving_config
from serving import serving_dir

SERVING_LOG_FILE = 'serving_log.jsonl'


class ServingOpsError(Exception):
  """A change that cannot be made; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class ServingChange:
  """One line of the serving log."""
  time: str
  action: str                      # push, rollback, promote, canary
  stable: int
  canary: Optional[int]
  previous_stable: Optional[int]
  previous_canary: Optional[int]
  removed: Tuple[int, ...] = ()    # versions deleted by the push's pruning
  run_id: str = ''


@dataclasses.dataclass(frozen=True)
class VersionInfo:
  version: int
  labels: Tuple[str, ...]
  pushed_at: str                   # from the model card; '' without one
  run_id: str
  headline: Dict[str, float]       # the metrics with floors, on the test split


def model_name_of(model_base_dir: str) -> str:
  return os.path.basename(model_base_dir.rstrip('/'))


def current(model_base_dir: str) -> Optional[serving_config.ServedVersions]:
  """What is served: `models.config`'s labels, else the newest version (TF Serving's default)."""
  served = serving_config.read_served_versions(model_base_dir)
  if served is not None:
    return served
  versions = serving_dir.served_versions(model_base_dir)
  return serving_config.ServedVersions(stable=versions[-1]) if versions else None


def list_versions(model_base_dir: str) -> List[VersionInfo]:
  """Every kept version, oldest first, with its labels and its card's headline."""
  served = current(model_base_dir)
  infos = []
  for version in serving_dir.served_versions(model_base_dir):
    labels = tuple(label for label, labelled in (
        (serving.STABLE_LABEL, served.stable if served else None),
        (serving.CANARY_LABEL, served.canary if served else None)) if labelled == version)
    card = model_card.read_card(os.path.join(model_base_dir, str(version)))
    infos.append(VersionInfo(
        version=version, labels=labels,
        pushed_at=card.pushed_at if card else '',
        run_id=card.run_id if card else '',
        headline=card.headline() if card else {}))
  return infos


def read_log(model_base_dir: str) -> List[ServingChange]:
  path = os.path.join(serving_config.config_dir(model_base_dir), SERVING_LOG_FILE)
  if not fileio.exists(path):
    return []
  with fileio.open(path, 'r') as f:
    return [ServingChange(**{**entry, 'removed': tuple(entry['removed'])})
            for entry in map(json.loads, f.read().splitlines()) if entry]


def _append_log(model_base_dir: str, change: ServingChange) -> None:
  """Rewrites the log with one more line: object stores cannot append."""
  path = os.path.join(serving_config.config_dir(model_base_dir), SERVING_LOG_FILE)
  text = ''
  if fileio.exists(path):
    with fileio.open(path, 'r') as f:
      text = f.read()
  serving_config.write_file_atomically(
      path, text + json.dumps(dataclasses.asdict(change), sort_keys=True) + '\n')


def set_served(model_base_dir: str, before: Optional[serving_config.ServedVersions],
               served: serving_config.ServedVersions, action: str,
               removed: Tuple[int, ...] = (), run_id: str = '') -> ServingChange:
  """Writes TF Serving's config files for `served` and logs the change from `before`.

  `before` is what `current` said before the change began: a push reads it
  before its new version folder appears.
  """
  serving_config.write_config_files(model_name_of(model_base_dir), model_base_dir, served)
  change = ServingChange(
      time=model_card.now(), action=action, stable=served.stable, canary=served.canary,
      previous_stable=before.stable if before else None,
      previous_canary=before.canary if before else None,
      removed=tuple(removed), run_id=run_id)
  _append_log(model_base_dir, change)
  return change


def _kept(model_base_dir: str, version: int) -> None:
  versions = serving_dir.served_versions(model_base_dir)
  if version not in versions:
    raise ServingOpsError(
        f'version {version} is not in {model_base_dir} (kept: '
        f'{", ".join(map(str, versions)) or "none"}); see `make serving ARGS=list`')


def _served_now(model_base_dir: str) -> serving_config.ServedVersions:
  served = current(model_base_dir)
  if served is None:
    raise ServingOpsError(f'nothing is pushed to {model_base_dir} yet (run `make run`)')
  return served


def _serve_as_stable(model_base_dir: str, version: int, action: str,
                     refusal: Callable[[serving_config.ServedVersions], str]) -> ServingChange:
  """Serves the kept `version` as `stable`, ending its canary; `refusal` says why not, or ''."""
  served = _served_now(model_base_dir)
  _kept(model_base_dir, version)
  reason = refusal(served)
  if reason:
    raise ServingOpsError(reason)
  canary = served.canary if served.canary != version else None
  return set_served(model_base_dir, served,
                    serving_config.ServedVersions(stable=version, canary=canary), action)


def rollback(model_base_dir: str, to_version: int) -> ServingChange:
  """Serves an earlier version as `stable`; the newer ones stay on disk, unserved."""
  return _serve_as_stable(model_base_dir, to_version, 'rollback', lambda served: (
      f'version {to_version} is not earlier than the served version {served.stable}; '
      f'use `promote {to_version}` to serve a newer one'
      if to_version >= served.stable else ''))


def promote(model_base_dir: str, version: int) -> ServingChange:
  """Serves `version` as `stable` (typically the canary, which then ends)."""
  return _serve_as_stable(model_base_dir, version, 'promote', lambda served: (
      f'version {version} is already the stable version'
      if version == served.stable else ''))


def stage_canary(model_base_dir: str, version: int) -> ServingChange:
  """Serves `version` beside the stable one, under the `canary` label."""
  served = _served_now(model_base_dir)
  _kept(model_base_dir, version)
  if version == served.stable:
    raise ServingOpsError(f'version {version} is the stable version, not a canary')
  return set_served(model_base_dir, served,
                    serving_config.ServedVersions(stable=served.stable, canary=version),
                    'canary')
