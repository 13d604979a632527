"""Which pushed version TF Serving serves: list the kept ones, roll back, promote.

    python serving_admin.py [--server URL] list [--json]
    python serving_admin.py [--server URL] rollback --to VERSION
    python serving_admin.py [--server URL] canary VERSION   # serve it beside stable
    python serving_admin.py [--server URL] promote VERSION  # make it `stable`
    python serving_admin.py --server URL complete           # finish a pending switch
    python serving_admin.py repair                          # rebuild a damaged models.config
    python serving_admin.py log

A label moves in two steps, as TF Serving requires: the version is listed in
`models.config`, and the label moves once the server has loaded it. With
`--server` (TF Serving's REST address) a command does both, waits for the
server's own status to show the switch and only then reports it; without, it
lists the version and says what is pending, and `complete --server URL` moves
the label later. The library is serving/serving_ops.py.
"""

import argparse
import dataclasses
import json
import os
import sys
from typing import List, Sequence

# First: quiets the pinned libraries' notices (google.api_core's Python-version
# FutureWarning) before they load; 10 ms, it loads no TensorFlow.
import models  # noqa: F401  pylint: disable=unused-import
from contracts import names
from serving import server_status
from serving import serving_ops

DEFAULT_MODEL_DIR = os.path.join('outputs', 'serving_model', names.MODEL_NAME)


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog='serving', description=__doc__.split('\n')[0])
  parser.add_argument('--model-dir', default=DEFAULT_MODEL_DIR,
                      help="TF Serving's model base folder (default: %(default)s)")
  parser.add_argument('--server', help="TF Serving's REST address, e.g. "
                                       'http://localhost:8501: move labels once it has '
                                       'loaded the version, and confirm the switch')
  parser.add_argument('--wait', type=float, default=serving_ops.DEFAULT_WAIT_S,
                      metavar='SECONDS', help='with --server: how long to wait for the '
                                              'server (default: %(default)s)')
  commands = parser.add_subparsers(dest='command', required=True)
  listing = commands.add_parser('list', help='kept versions, labels, push time, metrics')
  listing.add_argument('--json', action='store_true')
  commands.add_parser('log', help='every change of the served version')
  rollback = commands.add_parser('rollback', help='serve an earlier version as stable')
  rollback.add_argument('--to', type=int, required=True, metavar='VERSION')
  for name, text in (('promote', 'serve VERSION as stable'),
                     ('canary', 'serve VERSION beside stable, labelled canary')):
    commands.add_parser(name, help=text).add_argument('version', type=int)
  commands.add_parser('complete', help='move the pending label once the server has '
                                       'loaded its version (needs --server)')
  commands.add_parser('repair', help='rebuild models.config from the kept versions and '
                                     'the serving log')
  return parser.parse_args(argv)


def _list_lines(infos: List[serving_ops.VersionInfo]) -> str:
  if not infos:
    return 'No versions pushed yet.'
  lines = [f'{"version":<12} {"labels":<14} {"pushed at (UTC)":<26} metrics']
  for info in infos:
    metrics = '  '.join(f'{name}={value:.3f}' for name, value in info.headline.items())
    labels = ','.join(info.labels) or ('(loading)' if info.listed else '-')
    lines.append(f'{info.version:<12} {labels:<14} '
                 f'{info.pushed_at or "(no model card)":<26} {metrics}')
  return '\n'.join(lines)


def _complete_hint(pending: serving_ops.PendingSwitch) -> str:
  return (f'pending: {pending.label} -> {pending.version} ({pending.action} at '
          f'{pending.time}); TF Serving loads version {pending.version} within '
          'its config poll interval, then `make serving ARGS="--server URL complete"` '
          f'moves {pending.label} to it')


def change_line(change: serving_ops.ServingChange) -> str:
  """One line of `log` and of a command's output: what the server is told after the change."""
  canary = f', canary {change.canary}' if change.canary else ''
  if change.pending_version is not None:
    what = (f'stable {change.stable}{canary}, listed {change.pending_version}; '
            f'pending {change.pending_label} -> {change.pending_version}')
  else:
    what = f'stable {change.previous_stable} -> {change.stable}{canary}'
  return (f'{change.time}  {change.action:<8} {what}'
          + (f'  (removed {", ".join(map(str, change.removed))})' if change.removed else '')
          + (f'  (confirmed by {change.confirmed_by})' if change.confirmed_by else '')
          + (f'  ({change.note})' if change.note else ''))


def _one_line(text: str) -> str:
  """`text` with line breaks and other control characters escaped: a damaged
  file's bytes, quoted by a parse error, cannot split or garble the message."""
  return ''.join(c if c.isprintable() else c.encode('unicode_escape').decode('ascii')
                 for c in text)


def _change(args: argparse.Namespace) -> List[serving_ops.ServingChange]:
  model_dir = args.model_dir
  status = (server_status.ServerStatus(args.server, serving_ops.model_name_of(model_dir))
            if args.server else None)
  if args.command == 'rollback':
    return serving_ops.rollback(model_dir, args.to, status, args.wait)
  if args.command == 'promote':
    return serving_ops.promote(model_dir, args.version, status, args.wait)
  if args.command == 'canary':
    return serving_ops.stage_canary(model_dir, args.version, status, args.wait)
  if args.command == 'repair':
    return serving_ops.repair(model_dir)
  if status is None:
    raise serving_ops.ServingOpsError(
        'complete needs --server: a label moves only once the server has loaded '
        'its version')
  return serving_ops.complete(model_dir, status, args.wait)


def main(argv: Sequence[str]) -> int:
  """0: done; 2: nothing changed; 1: stopped part-way (`log` says how far)."""
  args = _parse_args(argv)
  model_dir = args.model_dir
  try:
    if not os.path.isdir(model_dir) and '://' not in model_dir:
      raise serving_ops.ServingOpsError(
          f'--model-dir {model_dir}: no such folder (run `make run` first?)')
    if args.command == 'list':
      infos = serving_ops.list_versions(model_dir)
      pending = serving_ops.pending_switch(model_dir)
      problems = serving_ops.problems(model_dir)
      if args.json:
        print(json.dumps({'versions': [dataclasses.asdict(i) for i in infos],
                          'pending': dataclasses.asdict(pending) if pending else None,
                          'problems': problems}, indent=1))
      else:
        print(_list_lines(infos))
        if pending:
          print(_complete_hint(pending))
      for problem in problems:
        print(f'serving: warning: {problem}', file=sys.stderr)
    elif args.command == 'log':
      for change in serving_ops.read_log(model_dir):
        print(change_line(change))
    else:
      for change in _change(args):
        print(change_line(change))
      pending = serving_ops.pending_switch(model_dir)
      if pending:
        print(_complete_hint(pending))
  except (serving_ops.ServingOpsError, ValueError) as error:
    print(f'serving: error: {_one_line(str(error))}', file=sys.stderr)
    return 1 if isinstance(error, serving_ops.SwitchStopped) else 2
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
