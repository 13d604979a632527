"""The fuzzer on the serving directory: random states, random `serving_admin` commands.

tests/fuzz/serving_states.py draws a serving directory (versions whole,
half-written or with a damaged card, a staging folder, `models.config` valid,
damaged, absent, not UTF-8, a folder, or with labels on missing versions and
pending switches, a serving log in step, out of step, with a bad line) and a
list of commands (list, log, rollback, canary, promote, complete, repair), each
with or without an unreachable `--server`, run through `serving_admin.main`.
After every command it checks invariants 2 and 5 (docs/invariants.md),
reading the files itself:

- exit 0, or 1/2 with one line on stderr, never a traceback;
- a change that exits 0 or 1 leaves a `models.config` that parses and agrees
  with the log's last line; one that exits 2, and `list` and `log`, leave
  `models.config` as it was;
- exit 0 is true: the label is on the version, or the log says the move is
  pending; nothing is reported done against an unreachable server;
- `list` warns about each label on a version that is not kept;
- at the end, `repair` brings back any damaged config while a version is kept.

Profiles as in fuzz_test.py.
"""

import json
import os
import subprocess
import sys
import tempfile
import types
from typing import List, Optional, Tuple

from google.protobuf import text_format
from hypothesis import event, given, settings
import pytest
from tensorflow_serving.config import model_server_config_pb2

import serving_admin
from contracts import names
from contracts import serving
from tests.fuzz import fuzz_test
from tests.fuzz import invariants
from tests.fuzz import serving_states
from tests.serving import fake_tf_serving

_CHANGES = ('rollback', 'promote', 'canary', 'complete', 'repair')
_LOG = 'serving_log.jsonl'
_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _kept(model_dir: str) -> List[int]:
  return sorted(int(n) for n in os.listdir(model_dir) if n.isdigit() and os.path.isfile(
      os.path.join(model_dir, n, serving.SAVED_MODEL_FILE)))


def _config(model_dir: str) -> Optional[Tuple[int, Optional[int], Tuple[int, ...]]]:
  """(stable, canary, listed) of `models.config`, or None when it does not parse."""
  path = os.path.join(os.path.dirname(model_dir), serving.MODELS_CONFIG_FILE)
  config = model_server_config_pb2.ModelServerConfig()
  try:
    with open(path, encoding='utf-8') as f:
      text_format.Parse(f.read(), config)
  except (OSError, ValueError, text_format.ParseError):
    return None
  models = [m for m in config.model_config_list.config if m.name == names.MODEL_NAME]
  if not models or 'stable' not in models[0].version_labels:
    return None
  labels = models[0].version_labels
  return (labels['stable'], labels.get('canary') or None,
          tuple(sorted(models[0].model_version_policy.specific.versions)))


def _log(model_dir: str) -> List[dict]:
  with open(os.path.join(os.path.dirname(model_dir), _LOG), encoding='utf-8') as f:
    return [json.loads(line) for line in f.read().splitlines() if line.strip()]


def _bytes(path: str) -> Optional[bytes]:
  if not os.path.isfile(path):
    return None if not os.path.exists(path) else b'<folder>'
  with open(path, 'rb') as f:
    return f.read()


def _run(argv: List[str]) -> Tuple[int, str, str]:
  return invariants.run_main(serving_admin.main, argv)


def _check_agrees(model_dir: str, what: str) -> Tuple[int, Optional[int], Tuple[int, ...]]:
  """Invariant 5: `models.config` parses and says what the log's last line says."""
  config = _config(model_dir)
  assert config is not None, f'{what}: models.config does not parse afterwards'
  last = _log(model_dir)[-1]
  listed = tuple(sorted({last['stable'], *([last['canary']] if last['canary'] else []),
                         *last.get('loading', ())}))
  assert config == (last['stable'], last['canary'], listed), (
      f'{what}: models.config {config} but the log ends with {last}')
  return config


def _check_command(model_dir: str, command: serving_states.Command,
                   server: Optional[fake_tf_serving.TfServing] = None) -> None:
  """Runs `command`, against `server` when given (else an unreachable one), and checks it."""
  url = server.url if server else serving_states.UNREACHABLE_SERVER
  argv = command.full_argv(model_dir, url, 5.0 if server else 0.3)
  folder = os.path.dirname(model_dir)
  config_path = os.path.join(folder, serving.MODELS_CONFIG_FILE)
  config_before, log_before = _bytes(config_path), _bytes(os.path.join(folder, _LOG))
  kept, listed_before = _kept(model_dir), (_config(model_dir) or (0, 0, ()))[2]
  code, out, err = _run(argv)
  what = f'{" ".join(argv[2:])} -> exit {code}: {err.strip()}'
  invariants.check_one_message(code, err)
  if code:
    assert len(err.strip().splitlines()) == 1, what
    assert err.startswith('serving: error: '), what
    assert any(named in err for named in (
        folder, serving.MODELS_CONFIG_FILE, _LOG, 'version', url, '--server', 'no switch')), (
            f'{what}: names no file, version or server')
  name = command.argv[0]
  event(f'{name}{" --server" if command.server else ""}: exit {code}')
  if name not in _CHANGES or code == 2:
    assert _bytes(config_path) == config_before, f'{what}: models.config changed'
    log_after = _bytes(os.path.join(folder, _LOG))
    if log_after != log_before:
      assert log_after is not None, f'{what}: the serving log is gone'
      added = log_after[len(log_before or b''):].decode().splitlines()
      assert log_after.startswith(log_before or b'') and all(
          json.loads(line)['action'] == 'recorded' for line in added), (
              f'{what}: the serving log changed: {added}')
  if command.argv == ('list', '--json') and code == 0:
    json.loads(out)
  if name == 'list' and code == 0:
    config = _config(model_dir)
    if config is not None:
      for version in {config[0], config[1]} - set(kept) - {None}:
        assert f'version {version}' in err, f'{what}: no warning about {version}'
  if name not in _CHANGES or code == 2:
    return
  stable, canary, listed = _check_agrees(model_dir, what)
  if code == 1:
    return
  assert not (command.server and not server and name != 'repair'), (
      f'{what}: done without the server')
  assert out.strip(), f'{what}: exit 0 and nothing said'
  assert set(listed) <= {*kept, *listed_before}, f'{what}: lists {listed}, kept {kept}'
  last = _log(model_dir)[-1]
  if name == 'repair':
    assert set(listed) <= set(kept), f'{what}: repair lists {listed}, kept {kept}'
  if name in ('rollback', 'promote', 'canary'):
    version = int(command.argv[-1])
    label = 'canary' if name == 'canary' else 'stable'
    assert last['action'] == name, what
    assert ((stable if label == 'stable' else canary) == version
            or (last.get('pending_label'), last.get('pending_version')) == (label, version)), (
                f'{what}: {label} is not on {version} and not pending: {last}')
    if server and command.server:
      assert server.labels.get(label) == version, (
          f'{what}: the server resolves {label} to {server.labels.get(label)}')


@settings(settings.get_profile(fuzz_test.PROFILE))
@given(scenario=serving_states.scenarios())
def test_serving_commands_keep_the_invariants(scenario):
  state, commands = scenario
  with tempfile.TemporaryDirectory() as base:
    model_dir = serving_states.write(base, state)
    for command in commands:
      _check_command(model_dir, command)
    config = _config(model_dir)
    kept = _kept(model_dir)
    if kept and (config is None or not set(config[2]) <= set(kept)):
      code, _, err = _run(['--model-dir', model_dir, 'repair'])
      if state.config == 'folder':
        # A folder where models.config belongs: repair names it and changes nothing.
        assert code == 2 and 'models.config' in err, err
        return
      assert code == 0, f'repair of {state} -> exit {code}: {err}'
      config = _check_agrees(model_dir, 'repair')
      assert set(config[2]) <= set(kept), f'repair listed {config}, kept {kept}'


def _load(version_dir: str) -> object:
  """The stand-in's loader: a version without `saved_model.pb` fails to load, as in TF Serving."""
  if not os.path.isfile(os.path.join(version_dir, serving.SAVED_MODEL_FILE)):
    raise OSError(f'SavedModel file does not exist at: {version_dir}')
  return types.SimpleNamespace(signatures={})


@settings(settings.get_profile(fuzz_test.PROFILE),
          max_examples=min(settings.get_profile(fuzz_test.PROFILE).max_examples,
                           6 if fuzz_test.PROFILE == 'fast' else 60))
@given(scenario=serving_states.served_scenarios())
def test_switches_against_a_server_are_true(scenario):
  """As above, `--server` naming the TF Serving stand-in on the same directory: a
  switch reported done is one the server's own label map shows."""
  state, commands = scenario
  with tempfile.TemporaryDirectory() as base:
    model_dir = serving_states.write(base, state)
    with fake_tf_serving.watching(model_dir, _load, load_delay_s=0.05) as server:
      for command in commands:
        _check_command(model_dir, command, server)


@pytest.mark.integration
def test_a_damaged_config_in_a_process():
  """The command as a user runs it: one line, no traceback or third-party notice, then repair."""
  with tempfile.TemporaryDirectory() as base:
    model_dir = serving_states.write(base, serving_states.ServingState(
        versions={1: 'whole', 2: 'carded'}, staging=True, config='damaged', stable=2,
        canary=None, loading=(), pending=False, log='in_step', garbage='model_config_list {'))
    env = {**os.environ, 'PYTHONPATH': _PROJECT_DIR}

    def admin(*argv):
      return subprocess.run([sys.executable, os.path.join(_PROJECT_DIR, 'serving_admin.py'),
                             '--model-dir', model_dir, *argv], capture_output=True,
                            text=True, env=env, check=False, timeout=120)

    listing = admin('list')
    errors = [line for line in listing.stderr.splitlines() if 'cuda' not in line]
    assert listing.returncode == 2, listing.stderr
    assert len(errors) == 1 and 'models.config' in errors[0] and 'repair' in errors[0], errors
    repaired = admin('repair')
    assert repaired.returncode == 0, repaired.stderr
    assert 'Warning' not in repaired.stderr, repaired.stderr
    assert _check_agrees(model_dir, 'repair')[0] == 2


def test_repair_moves_a_damaged_log_aside():
  with tempfile.TemporaryDirectory() as base:
    model_dir = serving_states.write(base, serving_states.ServingState(
        versions={1: 'whole', 2: 'whole'}, staging=False, config='valid', stable=2,
        canary=1, loading=(), pending=False, log='bad_line', garbage='{"stable": "two"'))
    code, _, err = _run(['--model-dir', model_dir, 'log'])
    assert code == 2 and 'line 2' in err and 'repair' in err, err
    code, out, err = _run(['--model-dir', model_dir, 'repair'])
    assert code == 0, err
    folder = os.path.dirname(model_dir)
    [aside] = [n for n in os.listdir(folder) if n.startswith(f'{_LOG}.damaged-')]
    assert f'damaged log moved to {os.path.join(folder, aside)}' in out, out
    assert [entry['action'] for entry in _log(model_dir)] == ['repair']
    assert _check_agrees(model_dir, 'repair') == (2, 1, (1, 2))
    code, out, err = _run(['--model-dir', model_dir, 'log'])
    assert code == 0 and 'repair' in out, err
