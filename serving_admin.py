"""Which pushed version TF Serving serves: list the kept ones, roll back, promote.

    python serving_admin.py list [--model-dir DIR] [--json]
    python serving_admin.py rollback --to VERSION
    python serving_admin.py canary VERSION       # serve it beside stable, as `canary`
    python serving_admin.py promote VERSION      # make it `stable`
    python serving_admin.py log

Each change rewrites TF Serving's `models.config` beside the model folder (one
atomic write, also on gs://) and adds a line to `serving_log.jsonl`; a server
started as docs/serving.md shows picks it up within its config poll interval.
The library is serving/serving_ops.py.
"""

import argparse
import dataclasses
import json
import os
import sys
from typing import Sequence

from contracts import names
from serving import serving_ops

DEFAULT_MODEL_DIR = os.path.join('outputs', 'serving_model', names.MODEL_NAME)


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog='serving', description=__doc__.split('\n')[0])
  parser.add_argument('--model-dir', default=DEFAULT_MODEL_DIR,
                      help="TF Serving's model base folder (default: %(default)s)")
  commands = parser.add_subparsers(dest='command', required=True)
  listing = commands.add_parser('list', help='kept versions, labels, push time, metrics')
  listing.add_argument('--json', action='store_true')
  commands.add_parser('log', help='every change of the served version')
  rollback = commands.add_parser('rollback', help='serve an earlier version as stable')
  rollback.add_argument('--to', type=int, required=True, metavar='VERSION')
  for name, text in (('promote', 'serve VERSION as stable'),
                     ('canary', 'serve VERSION beside stable, labelled canary')):
    commands.add_parser(name, help=text).add_argument('version', type=int)
  return parser.parse_args(argv)


def _list_lines(infos) -> str:
  if not infos:
    return 'No versions pushed yet.'
  lines = [f'{"version":<12} {"labels":<14} {"pushed at (UTC)":<26} metrics']
  for info in infos:
    metrics = '  '.join(f'{name}={value:.3f}' for name, value in info.headline.items())
    lines.append(f'{info.version:<12} {",".join(info.labels) or "-":<14} '
                 f'{info.pushed_at or "(no model card)":<26} {metrics}')
  return '\n'.join(lines)


def _change_line(change: serving_ops.ServingChange) -> str:
  canary = f', canary {change.canary}' if change.canary else ''
  return (f'{change.time}  {change.action:<8} stable {change.previous_stable} -> '
          f'{change.stable}{canary}'
          + (f'  (removed {", ".join(map(str, change.removed))})' if change.removed else ''))


def main(argv: Sequence[str]) -> int:
  args = _parse_args(argv)
  model_dir = args.model_dir
  try:
    if not os.path.isdir(model_dir) and '://' not in model_dir:
      raise serving_ops.ServingOpsError(
          f'--model-dir {model_dir}: no such folder (run `make run` first?)')
    if args.command == 'list':
      infos = serving_ops.list_versions(model_dir)
      print(json.dumps([dataclasses.asdict(i) for i in infos], indent=1) if args.json
            else _list_lines(infos))
    elif args.command == 'log':
      for change in serving_ops.read_log(model_dir):
        print(_change_line(change))
    else:
      change = {'rollback': lambda: serving_ops.rollback(model_dir, args.to),
                'promote': lambda: serving_ops.promote(model_dir, args.version),
                'canary': lambda: serving_ops.stage_canary(model_dir, args.version),
                }[args.command]()
      print(_change_line(change))
  except (serving_ops.ServingOpsError, ValueError) as error:
    print(f'serving: error: {error}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
