"""Scheduled retraining on BUS-BRA laid out as dated exports by scanner: `make bench-retraining`.

BUS-BRA's manifest names each image's scanner. This bench lays the site out as
a hospital's monthly exports would come (dataset/exports.py), one manifest
site per export, and runs `local_runner.py` on it as a cron job would, each
run a fresh process on one output folder:

  exports/2026-11   GE Logiq 7, the first 30% of its patients
  exports/2026-12   GE Logiq 7, the next 10% (added before case 2)
  exports/2027-01   Toshiba Aplio 300, a new scanner (added before case 3)

BUS-BRA has no normal scans, and a run needs every class of the schema in
every split, so every run also reads a second site that does not change:
BUSI, every third image of each class (`busi`). The shares are small so that
the five runs fit an hour on two loaded cores. The cases, in this order:

  1. the first export trains and pushes;
  4. nothing new: the same command again is a no-op (timed);
  2. the second export of the same scanner: the old images keep their splits
     (counted from the two runs' audits), the candidate is compared with the
     served model on the test split and pushed if not worse;
  3. the new scanner's export drifts: `--drift-policy stop` ends the run
     before training, then `warn` names it and goes on.

Case 4 runs right after case 1, whose model is always pushed (the floors are
0): after case 2 it would be a no-op only if case 2's candidate was pushed.
The results file is rewritten after every case.

The exports are copies, not symbolic links: the scan never follows links
(they may point anywhere). Prints each case's lines and writes
bench/results/retraining_scenario.json.

  make bench-retraining                          # busi_net, 64 px, 3 epochs
  make bench-retraining ARGS="--epochs 10"
"""

import argparse
import collections
import csv
import datetime
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Sequence

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(_PROJECT_DIR, 'bench', 'results', 'retraining_scenario.json')
# Relative to the working directory, as data/ is for BUSI (make runs in the checkout).
DEFAULT_BUS_BRA = os.path.join('..', 'shared', 'data', 'bus_bra')
DEFAULT_BUSI = os.path.join('..', 'shared', 'data', 'busi', 'Dataset_BUSI_with_GT')
BUSI_EVERY = 3
MANIFEST = 'bus_data.csv'
SITE = 'bus_bra'
# (export, scanner, which share of the scanner's patients, in Case order).
EXPORTS = (('2026-11', 'GE Logiq 7', (0.0, 0.3)),
           ('2026-12', 'GE Logiq 7', (0.3, 0.4)),
           ('2027-01', 'Toshiba Aplio 300', (0.0, 1.0)))
# What the summary lines of a case start with.
_SHOWN = ('Data audit:', 'Drift:', '  - ', 'Blessed:', 'Pushed:', 'No new data',
          'Stopped at', '  ')


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--bus-bra', default=DEFAULT_BUS_BRA,
                      help='the BUS-BRA folder (bus_data.csv, Images/, Masks/)')
  parser.add_argument('--busi', default=DEFAULT_BUSI,
                      help='the BUSI folder (benign/, malignant/, normal/)')
  parser.add_argument('--work-dir', default='/tmp/retraining_scenario',
                      help='where the exports and the output folder go (emptied first)')
  parser.add_argument('--model', default='busi_net')
  parser.add_argument('--image-size', type=int, default=64)
  parser.add_argument('--epochs', type=int, default=3)
  parser.add_argument('--regression-tolerance', type=float, default=0.05)
  parser.add_argument('--output', default=DEFAULT_OUTPUT)
  return parser.parse_args(argv)


def _rows(bus_bra: str) -> List[Dict[str, str]]:
  with open(os.path.join(bus_bra, MANIFEST), newline='', encoding='utf-8-sig') as f:
    return list(csv.DictReader(f))


def export_rows(rows: Sequence[Dict[str, str]], scanner: str,
                share: Sequence[float]) -> List[Dict[str, str]]:
  """The rows of `scanner` (the start of `Device`) whose patients fall in
  `share` (patients in the order of their ids)."""
  mine = [row for row in rows if row['Device'].startswith(scanner)]
  patients = sorted({row['Case'] for row in mine}, key=lambda case: (len(case), case))
  chosen = set(patients[round(share[0] * len(patients)):round(share[1] * len(patients))])
  return [row for row in mine if row['Case'] in chosen]


def write_export(bus_bra: str, folder: str, rows: Sequence[Dict[str, str]]) -> None:
  """One export: its own manifest and copies of its images and masks."""
  for sub in ('Images', 'Masks'):
    os.makedirs(os.path.join(folder, sub), exist_ok=True)
  for row in rows:
    image_id = row['ID']
    for sub, name in (('Images', f'{image_id}.png'),
                      ('Masks', f'mask_{image_id.removeprefix("bus_")}.png')):
      shutil.copyfile(os.path.join(bus_bra, sub, name), os.path.join(folder, sub, name))
  with open(os.path.join(folder, MANIFEST), 'w', newline='', encoding='utf-8') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)


def write_busi_subset(busi: str, folder: str) -> int:
  """Every BUSI_EVERY-th image of each class (in name order) with its masks; their count."""
  written = 0
  for label in sorted(os.listdir(busi)):
    source = os.path.join(busi, label)
    if not os.path.isdir(source):
      continue
    os.makedirs(os.path.join(folder, label))
    names = sorted(os.listdir(source))
    images = [n for n in names if n.endswith('.png') and '_mask' not in n]
    for image in images[::BUSI_EVERY]:
      stem = image[:-len('.png')]
      for name in names:
        if name == image or name.startswith(f'{stem}_mask'):
          shutil.copyfile(os.path.join(source, name), os.path.join(folder, label, name))
      written += 1
  return written


def _latest_audit(out: str) -> Dict[str, str]:
  """file -> split of the newest ImageExampleGen audit in `out`."""
  audits = glob.glob(os.path.join(out, '**', 'data_audit.json'), recursive=True)
  if not audits:
    return {}
  with open(max(audits, key=os.path.getmtime), encoding='utf-8') as f:
    return {entry['file']: entry['split'] for entry in json.load(f)['ingested_files']}


def _run(args: argparse.Namespace, site_root: str, out: str, *flags: str) -> Dict[str, object]:
  command = [sys.executable, os.path.join(_PROJECT_DIR, 'local_runner.py'),
             '--data-root', f'busi={os.path.join(args.work_dir, "busi")}',
             '--data-root', f'{SITE}={site_root}', '--manifest-columns', f'{SITE}={SITE}',
             '--output-dir', out, '--model', args.model, '--image-size',
             str(args.image_size), '--epochs', str(args.epochs), '--min-accuracy', '0',
             '--min-malignant-recall', '0', '--regression-tolerance',
             str(args.regression_tolerance), *flags]
  started = time.time()
  done = subprocess.run(command, cwd=_PROJECT_DIR, capture_output=True, text=True,
                        check=False)
  took = time.time() - started
  printed = (done.stdout + done.stderr).splitlines()
  lines = [line for line in printed if line.startswith(_SHOWN) and 'WARNING' not in line]
  print(f'$ local_runner.py ... {" ".join(flags)}  -> exit {done.returncode}, {took:.0f} s')
  print('\n'.join(lines) + '\n', flush=True)
  return {'flags': list(flags), 'exit_code': done.returncode, 'seconds': round(took, 1),
          'lines': lines,
          'tail': printed[-5:] if done.returncode else []}


def main(argv: Sequence[str]) -> int:
  args = parse_args(argv)
  rows = _rows(args.bus_bra)
  if os.path.exists(args.work_dir):
    shutil.rmtree(args.work_dir)
  site_root = os.path.join(args.work_dir, SITE)
  out = os.path.join(args.work_dir, 'out')
  exports = {name: export_rows(rows, scanner, share) for name, scanner, share in EXPORTS}
  cases = collections.OrderedDict()

  def add_export(name: str) -> None:
    write_export(args.bus_bra, os.path.join(site_root, 'exports', name), exports[name])

  busi_images = write_busi_subset(args.busi, os.path.join(args.work_dir, 'busi'))
  result = {
      'busi_images': busi_images,
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
      'command': 'bench/retraining_scenario.py ' + ' '.join(argv),
      'settings': {'model': args.model, 'image_size': args.image_size,
                   'epochs': args.epochs, 'min_accuracy': 0, 'min_malignant_recall': 0,
                   'regression_tolerance': args.regression_tolerance},
      'exports': {name: {'scanner': scanner, 'images': len(exports[name]),
                         'patients': len({r['Case'] for r in exports[name]})}
                  for name, scanner, _ in EXPORTS},
      'cases': cases,
  }

  def case(name: str, *flags: str) -> Dict[str, object]:
    cases[name] = _run(args, site_root, out, *flags)
    result['load_average'] = os.getloadavg()
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, 'w', encoding='utf-8') as f:
      json.dump(result, f, indent=1)
      f.write('\n')
    return cases[name]

  add_export('2026-11')
  case('1_first_export')
  first = _latest_audit(out)
  case('4_nothing_new')
  add_export('2026-12')
  grown = case('2_same_scanner_grows')
  second = _latest_audit(out)
  grown['old_images'] = len(first)
  grown['old_images_still_ingested'] = sum(f in second for f in first)
  grown['old_images_moved'] = sum(1 for f in first if f in second and second[f] != first[f])
  add_export('2027-01')
  case('3_new_scanner_stop', '--drift-policy', 'stop')
  case('3_new_scanner_warn', '--drift-policy', 'warn')
  print(f'Wrote {args.output}')
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
