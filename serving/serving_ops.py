"""Which pushed version TF Serving serves: listing, switching a label, the log, repair.

The versions on disk are only candidates; `models.config` says which ones TF
Serving loads and which carries which label (serving/serving_config.py).

**A label moves in two steps**, because TF Serving 2.16.1 checks a new config's
labels before it loads the versions the config lists
(`tensorflow_serving/model_servers/server_core.cc`: `ReloadConfig` runs
`UpdateModelVersionLabelMap` first, which refuses with FAILED_PRECONDITION to
move an existing label to a version that is not AVAILABLE, even with
`--allow_version_labels_for_unavailable_models`; the refused config is not
applied at all, so the new version is not loaded either, and the same refusal
repeats on every config poll). So:

1. the version is listed beside the current ones, the labels unchanged; the log
   records the switch as pending;
2. once the server reports the version AVAILABLE (its model status API, read
   by serving/server_status.py), the label moves and versions no label needs
   any more are dropped from the list. With a server address this happens in
   the same command, and the command reports success only once the server
   resolves the label to the new version. Without one, `complete --server URL`
   does it later: a label is never moved blind, since a refused move would stop
   every later config change from loading.

A label that does not exist yet (the first push, the first canary) is set in
one step: `--allow_version_labels_for_unavailable_models` lets a new label
name a version that is still loading.

Every change holds the serving directory's lock (serving/serving_lock.py),
rewrites `models.config` atomically and then adds a line to `serving_log.jsonl`
saying what TF Serving is told after it: so the last line of the log and the
config agree. A change interrupted between the two is recorded by the next
one ("recorded"); a damaged config is rebuilt by `repair`.
"""

import dataclasses
import json
import os
import uuid
from typing import Callable, Dict, List, Optional, Tuple

from tfx.dsl.io import fileio

from contracts import serving
from serving import model_card
from serving import server_status
from serving import serving_config
from serving import serving_dir
from serving import serving_lock

SERVING_LOG_FILE = 'serving_log.jsonl'
# How long a change waits for another to release the serving directory: one
# change with a server waits at most `DEFAULT_WAIT_S` for it, twice.
LOCK_TIMEOUT_S = 900.0
# How long a change waits for the server to load a version and move a label.
DEFAULT_WAIT_S = 300.0

STABLE = serving.STABLE_LABEL
CANARY = serving.CANARY_LABEL


class ServingOpsError(Exception):
  """A change that cannot be made; the message says why and what to do."""


class SwitchStopped(ServingOpsError):
  """A switch stopped after writing `models.config`: the log says how far it got."""


@dataclasses.dataclass(frozen=True)
class ServingChange:
  """One line of the serving log: what `models.config` says after the change."""
  time: str
  action: str                      # push, rollback, promote, canary, repair, recorded
  stable: int
  canary: Optional[int]
  previous_stable: Optional[int]
  previous_canary: Optional[int]
  removed: Tuple[int, ...] = ()    # versions deleted by the push's pruning
  run_id: str = ''
  loading: Tuple[int, ...] = ()    # listed without a label
  pending_label: str = ''          # moves to `pending_version` once it is loaded
  pending_version: Optional[int] = None
  confirmed_by: str = ''           # the server that was seen to make the switch
  note: str = ''                   # what else the change did, for a person to read

  def served(self) -> serving_config.ServedVersions:
    return serving_config.ServedVersions(stable=self.stable, canary=self.canary,
                                         loading=self.loading)


@dataclasses.dataclass(frozen=True)
class PendingSwitch:
  """A label that moves once its version is loaded (step 2 above)."""
  label: str
  version: int
  action: str
  time: str


@dataclasses.dataclass(frozen=True)
class VersionInfo:
  version: int
  labels: Tuple[str, ...]
  listed: bool                     # in models.config: TF Serving loads it
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


def _log_path(model_base_dir: str) -> str:
  return os.path.join(serving_config.config_dir(model_base_dir), SERVING_LOG_FILE)


def read_log(model_base_dir: str) -> List[ServingChange]:
  path = _log_path(model_base_dir)
  if not fileio.exists(path):
    return []
  repair = '`make serving ARGS=repair` moves it aside and starts a new log'
  try:
    lines = serving_config.read_text(path).splitlines()
  except serving_config.ServingFileError as error:
    raise ServingOpsError(f'{error}; {repair}') from None
  changes = []
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      entry = json.loads(line)
      changes.append(ServingChange(**{
          **entry, 'removed': tuple(entry.get('removed', ())),
          'loading': tuple(entry.get('loading', ()))}))
    except (ValueError, TypeError) as error:
      raise ServingOpsError(f'{path}, line {number}: not a serving log line ({error}); '
                            f'{repair}') from None
  return changes


def pending_switch(model_base_dir: str) -> Optional[PendingSwitch]:
  """The switch waiting for its version to load, if the log's last line has one."""
  log = read_log(model_base_dir)
  if not log or log[-1].pending_version is None:
    return None
  last = log[-1]
  return PendingSwitch(label=last.pending_label, version=last.pending_version,
                       action=last.action, time=last.time)


def list_versions(model_base_dir: str) -> List[VersionInfo]:
  """Every kept version, oldest first, with its labels and its card's headline."""
  served = current(model_base_dir)
  infos = []
  for version in serving_dir.served_versions(model_base_dir):
    labels = tuple(label for label, labelled in (_labels(served) if served else {}).items()
                   if labelled == version)
    try:
      card = model_card.read_card(os.path.join(model_base_dir, str(version)))
    except model_card.DamagedCardError:
      card = None   # `problems` names it
    infos.append(VersionInfo(
        version=version, labels=labels,
        listed=bool(served) and version in served.versions(),
        pushed_at=card.pushed_at if card else '',
        run_id=card.run_id if card else '',
        headline=card.headline() if card else {}))
  return infos


def problems(model_base_dir: str) -> List[str]:
  """What `list` warns about: damaged cards, missing labelled or listed versions, a stale log."""
  kept = serving_dir.served_versions(model_base_dir)
  found = []
  for version in kept:
    try:
      model_card.read_card(os.path.join(model_base_dir, str(version)))
    except model_card.DamagedCardError as error:
      found.append(f'{error}; version {version} is listed without its metrics')
  served = serving_config.read_served_versions(model_base_dir)
  if served is None:
    return found
  found += [f'{label} names version {version}, which is not in {model_base_dir}: TF '
            'Serving cannot load it; serve a kept version (`promote VERSION`) or run `repair`'
            for label, version in _labels(served).items() if version not in kept]
  found += [f'version {version} is listed in {serving.MODELS_CONFIG_FILE} but not in '
            f'{model_base_dir}; run `repair`' for version in served.loading
            if version not in kept]
  log = read_log(model_base_dir)
  if log and log[-1].served() != served:
    found.append(f'{serving.MODELS_CONFIG_FILE} differs from the last line of '
                 f'{SERVING_LOG_FILE}: a change was interrupted; the next change records it')
  return found


def _write(model_base_dir: str, served: serving_config.ServedVersions) -> None:
  serving_config.write_config_files(model_name_of(model_base_dir), model_base_dir, served)


def _log(model_base_dir: str, before: Optional[serving_config.ServedVersions],
         served: serving_config.ServedVersions, action: str,
         pending: Optional[Tuple[str, int]] = None, removed: Tuple[int, ...] = (),
         run_id: str = '', confirmed_by: str = '', note: str = '') -> ServingChange:
  change = ServingChange(
      time=model_card.now(), action=action, stable=served.stable, canary=served.canary,
      previous_stable=before.stable if before else None,
      previous_canary=before.canary if before else None,
      removed=tuple(removed), run_id=run_id, loading=served.loading,
      pending_label=pending[0] if pending else '',
      pending_version=pending[1] if pending else None,
      confirmed_by=confirmed_by, note=note)
  # The log is rewritten with one more line: object stores cannot append.
  path = _log_path(model_base_dir)
  text = serving_config.read_text(path) if fileio.exists(path) else ''
  serving_config.write_file_atomically(
      path, text + json.dumps(dataclasses.asdict(change), sort_keys=True) + '\n')
  return change


def _record_interrupted(model_base_dir: str) -> None:
  """Logs a config that an interrupted change wrote without its log line."""
  served = serving_config.read_served_versions(model_base_dir)
  log = read_log(model_base_dir)
  if served is not None and log and log[-1].served() != served:
    _log(model_base_dir, log[-1].served(), served, 'recorded')


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


def _labels(served: serving_config.ServedVersions) -> Dict[str, int]:
  return {STABLE: served.stable, **({CANARY: served.canary} if served.canary else {})}


def _moved(served: serving_config.ServedVersions, label: str,
           version: int) -> serving_config.ServedVersions:
  """`served` with `label` on `version`, only labelled versions listed.

  A version that becomes `stable` stops being the canary.
  """
  if label == STABLE:
    return serving_config.ServedVersions(
        stable=version, canary=served.canary if served.canary != version else None)
  return serving_config.ServedVersions(stable=served.stable, canary=version)


def _wait_until_loaded(status: server_status.ServerStatus, version: int,
                       wait_s: float) -> None:
  seen: List[Optional[server_status.VersionStatus]] = [None]

  def loaded() -> bool:
    seen[0] = status.version_status(version)
    if seen[0] is not None and seen[0].state == 'END' and seen[0].error:
      raise ServingOpsError(f'{status.server} could not load version {version}: '
                            f'{seen[0].error}')
    return seen[0] is not None and seen[0].state == server_status.AVAILABLE

  if not server_status.wait_for(loaded, wait_s):
    state = seen[0].state if seen[0] else 'not known to the server yet'
    raise ServingOpsError(
        f'{status.server} has not loaded version {version} after {wait_s:g} s '
        f'(state: {state}); the switch stays pending: run `make serving ARGS="--server '
        f'{status.server} complete"` once it is AVAILABLE')


def _wait_until_labelled(status: server_status.ServerStatus, label: str, version: int,
                         wait_s: float) -> None:
  if not server_status.wait_for(lambda: status.label_version(label) == version, wait_s):
    raise ServingOpsError(
        f'{serving.MODELS_CONFIG_FILE} moves {label} to {version}, but after {wait_s:g} s '
        f'{status.server} still resolves {label} to {status.label_version(label)}; '
        'look for "PollFilesystemAndReloadConfig failed" in the server\'s log')


def _logged_after(confirm: Callable[[], None], log: Callable[[str], ServingChange],
                  server: str) -> ServingChange:
  """Waits for the server to confirm a written config, then logs it, confirmed or not."""
  try:
    confirm()
  except (ServingOpsError, server_status.ServerError) as error:
    log('')
    raise SwitchStopped(str(error)) from None
  except BaseException:
    log('')
    raise
  return log(server)


def _complete(model_base_dir: str, status: server_status.ServerStatus,
              wait_s: float) -> ServingChange:
  """Step 2: waits for the pending version to load, then moves its label."""
  pending = pending_switch(model_base_dir)
  if pending is None:
    raise ServingOpsError('no switch is pending; see `make serving ARGS=list`')
  _kept(model_base_dir, pending.version)
  _wait_until_loaded(status, pending.version, wait_s)
  before = _served_now(model_base_dir)
  served = _moved(before, pending.label, pending.version)
  _write(model_base_dir, served)
  return _logged_after(
      lambda: _wait_until_labelled(status, pending.label, pending.version, wait_s),
      lambda server: _log(model_base_dir, before, served, pending.action,
                          confirmed_by=server), status.server)


def _switch(model_base_dir: str, label: str, version: int, action: str,
            status: Optional[server_status.ServerStatus], wait_s: float,
            before: Optional[serving_config.ServedVersions], run_id: str = '',
            removed: Tuple[int, ...] = ()) -> List[ServingChange]:
  """Puts `label` on `version`: in one step for a label the server lacks, else in two."""
  configured = serving_config.read_served_versions(model_base_dir)
  if configured is None or label not in _labels(configured):
    served = (serving_config.ServedVersions(stable=version) if before is None
              else _moved(before, label, version))
    _write(model_base_dir, served)

    def log(server: str) -> ServingChange:
      return _log(model_base_dir, before, served, action, removed=removed, run_id=run_id,
                  confirmed_by=server)
    if status is None:
      return [log('')]
    return [_logged_after(lambda: (_wait_until_loaded(status, version, wait_s),
                                   _wait_until_labelled(status, label, version, wait_s)),
                          log, status.server)]
  loading = () if version in configured.labelled() else (version,)
  listed = dataclasses.replace(configured, loading=loading)
  _write(model_base_dir, listed)
  changes = [_log(model_base_dir, configured, listed, action, pending=(label, version),
                  removed=removed, run_id=run_id)]
  if status is not None:
    try:
      changes.append(_complete(model_base_dir, status, wait_s))
    except (ServingOpsError, server_status.ServerError) as error:
      raise SwitchStopped(f'{error} (step 1 is done: the version is listed)') from None
  return changes


def _change(model_base_dir: str, holder: str, body: Callable[[], List[ServingChange]],
            record_interrupted: bool = True) -> List[ServingChange]:
  """Runs `body` holding the lock, after recording what an interrupted change left."""
  try:
    with serving_lock.held(model_base_dir, LOCK_TIMEOUT_S, holder):
      if record_interrupted:
        _record_interrupted(model_base_dir)
      return body()
  except serving_lock.LockTimeout as error:
    raise ServingOpsError(str(error)) from None
  except server_status.ServerError as error:
    raise ServingOpsError(f'{error}; nothing was changed') from None


def _serve_as(model_base_dir: str, label: str, version: int, action: str,
              refusal: Callable[[serving_config.ServedVersions], str],
              status: Optional[server_status.ServerStatus], wait_s: float
              ) -> List[ServingChange]:
  def body() -> List[ServingChange]:
    served = _served_now(model_base_dir)
    _kept(model_base_dir, version)
    reason = refusal(served)
    if reason:
      raise ServingOpsError(reason)
    return _switch(model_base_dir, label, version, action, status, wait_s, served)
  return _change(model_base_dir, f'{action} {version}', body)


def rollback(model_base_dir: str, to_version: int,
             status: Optional[server_status.ServerStatus] = None,
             wait_s: float = DEFAULT_WAIT_S) -> List[ServingChange]:
  """Serves an earlier version as `stable`; the newer ones stay on disk, unserved."""
  return _serve_as(model_base_dir, STABLE, to_version, 'rollback', lambda served: (
      f'version {to_version} is not earlier than the served version {served.stable}; '
      f'use `promote {to_version}` to serve a newer one'
      if to_version >= served.stable else ''), status, wait_s)


def promote(model_base_dir: str, version: int,
            status: Optional[server_status.ServerStatus] = None,
            wait_s: float = DEFAULT_WAIT_S) -> List[ServingChange]:
  """Serves `version` as `stable` (typically the canary, which then ends)."""
  return _serve_as(model_base_dir, STABLE, version, 'promote', lambda served: (
      f'version {version} is already the stable version'
      if version == served.stable else ''), status, wait_s)


def stage_canary(model_base_dir: str, version: int,
                 status: Optional[server_status.ServerStatus] = None,
                 wait_s: float = DEFAULT_WAIT_S) -> List[ServingChange]:
  """Serves `version` beside the stable one, under the `canary` label."""
  return _serve_as(model_base_dir, CANARY, version, 'canary', lambda served: (
      f'version {version} is the stable version, not a canary'
      if version == served.stable else
      f'version {version} is already the canary' if version == served.canary
      else ''), status, wait_s)


def complete(model_base_dir: str, status: server_status.ServerStatus,
             wait_s: float = DEFAULT_WAIT_S) -> List[ServingChange]:
  """Step 2 of the pending switch, once `status` reports its version loaded."""
  return _change(model_base_dir, 'complete',
                 lambda: [_complete(model_base_dir, status, wait_s)])


def serve_pushed(model_base_dir: str, version: int, before: Optional[serving_config.ServedVersions],
                 keep: int, run_id: str) -> ServingChange:
  """Lists a freshly pushed version for `stable` and prunes; the caller holds the lock.

  `before` is what `current` said before the version folder appeared. The
  first push labels it at once; later ones leave the label move pending. The
  labelled and listed versions are never pruned.
  """
  _record_interrupted(model_base_dir)
  protected = ({*before.labelled(), version} if before else {version})
  doomed = serving_dir.old_versions(model_base_dir, keep, protected=sorted(protected))
  [change] = _switch(model_base_dir, STABLE, version, 'push', None, 0.0, before,
                     run_id=run_id, removed=tuple(doomed))
  serving_dir.remove_versions(model_base_dir, doomed)
  return change


def repair(model_base_dir: str) -> List[ServingChange]:
  """Rebuilds a damaged `models.config` from the kept versions and the log, or a damaged log.

  The labels come from a sound config, else from the newest log line whose
  `stable` version is still kept (its canary too, if kept); without one, the
  newest kept version is `stable`. A log that cannot be read whole is moved
  aside, not edited: the new log starts with this repair, which names where the
  old one went. A pending switch is dropped: run its command again.
  """
  def body() -> List[ServingChange]:
    kept = serving_dir.served_versions(model_base_dir)
    if not kept:
      raise ServingOpsError(f'no version is kept in {model_base_dir}: nothing to serve')
    try:
      served = serving_config.read_served_versions(model_base_dir)
    except serving_config.DamagedConfigError:
      served = None
    sound = served is not None and set(served.versions()) <= set(kept)
    try:
      log, moved_to = read_log(model_base_dir), ''
    except ServingOpsError:
      log, moved_to = [], f'{_log_path(model_base_dir)}.damaged-{uuid.uuid4().hex[:8]}'
    if sound and not moved_to:
      raise ServingOpsError(f'{serving.MODELS_CONFIG_FILE} and {SERVING_LOG_FILE} are '
                            'sound: nothing to repair')
    rebuilt = served if sound else next((serving_config.ServedVersions(
        stable=change.stable, canary=change.canary if change.canary in kept else None)
                    for change in reversed(log) if change.stable in kept),
                   serving_config.ServedVersions(stable=kept[-1]))
    _write(model_base_dir, rebuilt)
    if moved_to:
      fileio.rename(_log_path(model_base_dir), moved_to)
    return [_log(model_base_dir, served, rebuilt, 'repair',
                 note=f'damaged log moved to {moved_to}' if moved_to else '')]
  # Not after recording an interrupted change: that reads the log it may repair.
  return _change(model_base_dir, 'repair', body, record_interrupted=False)
