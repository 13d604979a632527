"""Random serving directories for the fuzzer: versions, `models.config`, the serving log.

A state is drawn as plain values (`ServingState`) and written by `write`, so
hypothesis shrinks a failure to the smallest directory and command list. The
layout is the one `make run` pushes to (docs/serving.md): the model base
folder `serving/busi_classifier/` with numbered version folders, and beside it
`models.config` and `serving_log.jsonl`. The admin commands look only at which
version folders hold a `saved_model.pb` and at their model cards, never inside
the graph, so a version here is a `saved_model.pb` of a few bytes.
"""

import dataclasses
import json
import os
from typing import Dict, List, Optional, Tuple

from hypothesis import strategies as st

from contracts import names
from contracts import serving
from serving import model_card

# What a version folder holds: a whole version (with or without a model card,
# or a damaged card), or one a push left half-written (no saved_model.pb).
VERSION_KINDS = ('whole', 'carded', 'bad_card', 'no_pb')
# What stands where `models.config` or `serving_log.jsonl` belongs.
CONFIG_KINDS = ('absent', 'valid', 'no_stable', 'damaged', 'not_utf8', 'folder')
LOG_KINDS = ('absent', 'in_step', 'out_of_step', 'bad_line', 'not_utf8', 'folder')
# Damaged text that almost reads: JSON of the wrong shape or types, a config
# without the model or its labels.
_NEAR_MISSES = (
    '0', '[]', '{}', 'null', '{"stable": "two"}', '{"data": {}}',
    '{"time": "t", "action": "push", "stable": "2", "canary": null, '
    '"previous_stable": null, "previous_canary": null}',
    '{"time": "t", "action": "push", "stable": 1, "canary": null, '
    '"previous_stable": null, "previous_canary": null, "colour": "red"}',
    'model_config_list {}',
    'model_config_list { config { name: "busi_classifier" } }',
    'model_config_list { config { name: "busi_classifier" version_labels { key: "stable" '
    'value: 3 } } }')
# A port nothing listens on: every request is refused at once.
UNREACHABLE_SERVER = 'http://127.0.0.1:9'


@dataclasses.dataclass(frozen=True)
class ServingState:
  versions: Dict[int, str]            # version -> one of VERSION_KINDS
  staging: bool                       # a hidden folder a push left behind
  config: str                         # one of CONFIG_KINDS
  stable: int                         # the labels of a `valid` config,
  canary: Optional[int]               # which may name missing versions
  loading: Tuple[int, ...]
  pending: bool                       # the log's last line has a pending switch
  log: str                            # one of LOG_KINDS
  garbage: str                        # the text of a damaged file


@dataclasses.dataclass(frozen=True)
class Command:
  argv: Tuple[str, ...]
  server: bool                        # with --server UNREACHABLE_SERVER

  def full_argv(self, model_dir: str, server_url: str = UNREACHABLE_SERVER,
                wait_s: float = 0.3) -> list:
    server = ['--server', server_url, '--wait', f'{wait_s:g}'] if self.server else []
    return ['--model-dir', model_dir, *server, *self.argv]


_VERSION = st.integers(min_value=1, max_value=6)


@st.composite
def scenarios(draw) -> Tuple[ServingState, List[Command]]:
  """A serving directory and up to six commands to run on it, one after the other."""
  state = draw(serving_states())
  return state, draw(st.lists(commands(state.versions), min_size=1, max_size=6))


@st.composite
def served_scenarios(draw) -> Tuple[ServingState, List[Command]]:
  """A directory a TF Serving can start on (a valid `models.config`) with a log a
  change can extend, and commands: most switches can be made here."""
  state, _ = draw(scenarios())
  state = dataclasses.replace(
      state, config='valid', versions={**state.versions, state.stable: 'whole'},
      log=draw(st.sampled_from(('absent', 'in_step', 'out_of_step'))))
  return state, draw(st.lists(commands(state.versions), min_size=1, max_size=4))


@st.composite
def serving_states(draw) -> ServingState:
  versions = draw(st.dictionaries(_VERSION, _mostly('whole', VERSION_KINDS), max_size=5))
  config = draw(_mostly('valid', CONFIG_KINDS))
  stable = draw(_kept_or_any(versions))
  canary = draw(st.one_of(st.none(), _kept_or_any(versions)))
  canary = canary if canary != stable else None
  loading = tuple(sorted(draw(st.sets(_VERSION, max_size=2)) - {stable, canary}))
  return ServingState(
      versions=versions, staging=draw(st.booleans()), config=config, stable=stable,
      canary=canary, loading=loading, pending=bool(loading) and draw(st.booleans()),
      log=draw(_mostly('in_step', LOG_KINDS)),
      garbage=draw(st.one_of(st.text(max_size=40), st.sampled_from(_NEAR_MISSES))))


def _mostly(kind: str, kinds: Tuple[str, ...]) -> st.SearchStrategy:
  """`kind` about half the time, so that most commands meet a directory they can change."""
  return st.one_of(st.just(kind), st.sampled_from(kinds))


def _kept_or_any(versions: Dict[int, str]) -> st.SearchStrategy:
  present = sorted(versions)
  return st.one_of(st.sampled_from(present), _VERSION) if present else _VERSION


def commands(versions: Dict[int, str]) -> st.SearchStrategy:
  """Commands on the versions of a state, or on any version number (0 and 7: never pushed)."""
  version = st.one_of(_kept_or_any(versions), st.integers(min_value=0, max_value=7)).map(str)
  argv = st.one_of(
      st.just(('list',)), st.just(('list', '--json')), st.just(('log',)),
      st.just(('complete',)), st.just(('repair',)),
      version.map(lambda v: ('rollback', '--to', v)),
      version.map(lambda v: ('canary', v)), version.map(lambda v: ('promote', v)))
  return st.builds(Command, argv=argv, server=st.booleans())


def _config_text(state: ServingState, model_name: str) -> str:
  labels = [('stable', state.stable)] + ([('canary', state.canary)] if state.canary else [])
  if state.config == 'no_stable':
    labels = labels[1:]
  listed = sorted({v for _, v in labels} | set(state.loading) | {state.stable})
  return ''.join(
      ['model_config_list {\n  config {\n', f'    name: "{model_name}"\n',
       f'    base_path: "/models/{model_name}"\n', '    model_platform: "tensorflow"\n',
       '    model_version_policy {\n      specific {\n',
       *[f'        versions: {v}\n' for v in listed], '      }\n    }\n',
       *[f'    version_labels {{\n      key: "{k}"\n      value: {v}\n    }}\n'
         for k, v in labels], '  }\n}\n'])


def _log_lines(state: ServingState) -> str:
  """A log whose last line says what the config says (`in_step`), or something else."""
  first = {'time': '2026-12-01T10:00:00+00:00', 'action': 'push', 'stable': state.stable,
           'canary': None, 'previous_stable': None, 'previous_canary': None}
  last = {**first, 'time': '2026-12-01T11:00:00+00:00', 'action': 'canary',
          'canary': state.canary, 'previous_stable': state.stable,
          'loading': list(state.loading)}
  if state.pending:
    last.update(pending_label='stable', pending_version=state.loading[0])
  if state.log == 'out_of_step':
    last.update(stable=state.stable + 1, loading=[])
  lines = [json.dumps(first), json.dumps(last)]
  if state.log == 'bad_line':
    lines.insert(1, state.garbage.replace('\n', ' ') or '{')
  return '\n'.join(lines) + '\n'


def _write_file(path: str, kind: str, text: str) -> None:
  if kind == 'folder':
    os.makedirs(path)
    return
  with open(path, 'wb') as f:
    f.write(b'\xff\xfe' + text.encode() if kind == 'not_utf8' else text.encode())


def write(base: str, state: ServingState) -> str:
  """Writes `state` under `base`; returns the model base folder."""
  model_dir = os.path.join(base, 'serving', names.MODEL_NAME)
  os.makedirs(model_dir)
  for version, kind in state.versions.items():
    version_dir = os.path.join(model_dir, str(version))
    os.makedirs(os.path.join(version_dir, 'variables'))
    if kind != 'no_pb':
      with open(os.path.join(version_dir, serving.SAVED_MODEL_FILE), 'wb') as f:
        f.write(b'\x08\x01')
    if kind in ('carded', 'bad_card'):
      card = os.path.join(version_dir, serving.ASSETS_EXTRA, serving.MODEL_CARD_JSON_FILE)
      os.makedirs(os.path.dirname(card))
      with open(card, 'w', encoding='utf-8') as f:
        f.write(state.garbage if kind == 'bad_card' else _card_json(version))
  if state.staging:
    os.makedirs(os.path.join(model_dir, '.push-staging-1', 'variables'))
  folder = os.path.dirname(model_dir)
  if state.config != 'absent':
    text = (state.garbage if state.config in ('damaged', 'not_utf8')
            else _config_text(state, names.MODEL_NAME))
    _write_file(os.path.join(folder, serving.MODELS_CONFIG_FILE), state.config, text)
  if state.log != 'absent':
    _write_file(os.path.join(folder, 'serving_log.jsonl'), state.log, _log_lines(state))
  return model_dir


def _card_json(version: int) -> str:
  return model_card.to_json(model_card.ModelCard(
      model_name=names.MODEL_NAME, version=version, pushed_at='2026-12-01T10:00:00+00:00',
      run_id=f'run-{version}',
      data=model_card.DataSummary('fp', {'benign': 1}, {'test': {'benign': 1}}),
      test_split='test', test_metrics={'accuracy': 0.875}, floors={'accuracy': 0.8},
      regression_tolerance=0.0, baseline_version='', code_fingerprint='c',
      training_config={}))
