"""What the pipeline costs on top of its training: `make bench-pipeline`.

Times, side by side on BUSI with the same model, epochs and split:
  (a) the whole local pipeline (local_runner's config, LocalDagRunner, no cache),
      once per --beam-workers setting, per component from ML Metadata;
  (b) the floor: `models.training_loop.train` alone on the images already decoded
      into memory by the Transform's own decoders.
Each runs in a child process whose process-tree memory is sampled, so peak RSS
is per component and one run's memory never leaks into the next. Prints a
table and writes bench/results/pipeline.json.

  make bench-pipeline                              # default model and epochs
  make bench-pipeline ARGS="--epochs 2"            # mostly the fixed overhead
  make bench-pipeline ARGS="--beam-workers 1,0,2"  # in-process vs worker pools
"""

import argparse
import dataclasses
import datetime
import json
import os
import shlex
import shutil
import sys
import time
from typing import Dict, List, Optional, Sequence

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)

from bench import busi_arrays
from bench import results_file
from bench import run_profile
from contracts import configs
from contracts import names
from dataset import data_root
from models import registry
from models import training_loop
from orchestration import local
from pipeline import pipeline as pipeline_lib

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(_PROJECT_DIR, 'bench', 'results', 'pipeline.json')
DEFAULT_WORK_DIR = os.path.join(_PROJECT_DIR, 'outputs', 'bench', 'pipeline')
# The targets on two cores: the whole run within 1.5x its training alone, and
# at most 90 s of it outside the Trainer.
MAX_RATIO_TO_FLOOR = 1.5
MAX_NON_TRAINING_S = 90.0


def _beam_workers(text: str) -> List[int]:
  try:
    workers = [int(part) for part in text.split(',')]
  except ValueError:
    raise argparse.ArgumentTypeError(
        f'--beam-workers takes comma-separated whole numbers (e.g. 1,0), got {text!r}')
  if min(workers) < 0:
    raise argparse.ArgumentTypeError(f'--beam-workers must be 0 or more, got {text!r}')
  return workers


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-root', default='',
                      help='BUSI folder (Dataset_BUSI_with_GT); default: as `make run`')
  parser.add_argument('--model', choices=registry.MODEL_CHOICES,
                      default=configs.ModelConfig.name)
  parser.add_argument('--epochs', type=int, default=None,
                      help='epochs for both the pipeline and the floor '
                           '(default: the model\'s own)')
  parser.add_argument('--beam-workers', type=_beam_workers, default=[1, 0],
                      help='one pipeline run per value, as local_runner --beam-workers '
                           '(0: a worker process per core, 1: in process); default 1,0')
  parser.add_argument('--work-dir', default=DEFAULT_WORK_DIR,
                      help='pipeline outputs of the measured runs (emptied first)')
  parser.add_argument('--output', default=DEFAULT_OUTPUT, help='JSON results file')
  parser.add_argument('--stage', choices=('floor', 'pipeline'),
                      help=argparse.SUPPRESS)  # one measurement, in a child process
  parser.add_argument('--stage-result', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.epochs is None:
    args.epochs = registry.spec(args.model).epochs
  if args.epochs < 1:
    parser.error(f'--epochs must be at least 1, got {args.epochs}')
  return args


def _pipeline_config(args: argparse.Namespace, busi_root: str, output_dir: str,
                     beam_workers: int) -> configs.PipelineConfig:
  """What `local_runner.py` runs with --model, --epochs and --beam-workers, uncached."""
  return local.local_config(
      busi_root, output_dir,
      model=dataclasses.replace(configs.ModelConfig(), name=args.model,
                                image_size=registry.spec(args.model).image_size),
      training=dataclasses.replace(configs.TrainingConfig(), epochs=args.epochs),
      enable_cache=False, beam_workers=beam_workers)


def _floor_stage(config) -> Dict[str, object]:
  """Decodes BUSI into memory, then times `train` alone on the pipeline's split."""
  decode_start = time.time()
  images = busi_arrays.load(config.data, config.model.image_size)
  split = busi_arrays.pipeline_split(images, config.data)
  train_start = time.time()
  result = training_loop.train(config.model, config.training, config.data.class_names,
                          images.subset(split['train']).dataset(),
                          images.subset(split['eval']).dataset())
  train_end = time.time()
  return {'windows': [['decode', decode_start, train_start],
                      ['train', train_start, train_end]],
          'epochs_run': result.epochs_run,
          'examples': {name: int(ix.size) for name, ix in split.items()}}


def _pipeline_stage(config) -> Dict[str, object]:
  start = time.time()
  local.run_dag(pipeline_lib.create_pipeline(config), config.metadata_path)
  return {'runner': [start, time.time()]}


def _run_stage(args: argparse.Namespace, data_root: str) -> None:
  workers = args.beam_workers[0]
  config = _pipeline_config(args, data_root, _run_dir(args, workers), workers)
  result = (_floor_stage(config) if args.stage == 'floor'
            else _pipeline_stage(config))
  with open(args.stage_result, 'w') as f:
    json.dump(result, f)


def _run_dir(args: argparse.Namespace, beam_workers: int) -> str:
  return os.path.join(os.path.abspath(args.work_dir), f'beam_workers_{beam_workers}')


def _measure(args: argparse.Namespace, data_root: str, stage: str,
             beam_workers: int):
  """Runs one stage in a child process; returns its sampled run and its result."""
  result_path = os.path.join(os.path.abspath(args.work_dir), f'{stage}_{beam_workers}.json')
  argv = [sys.executable, '-m', 'bench.pipeline_bench', '--stage', stage,
          '--stage-result', result_path, '--data-root', data_root,
          '--model', args.model, '--epochs', str(args.epochs),
          '--beam-workers', str(beam_workers), '--work-dir', args.work_dir]
  load_before = run_profile.machine_load()
  child = run_profile.run_sampled(argv, run_profile.project_env())
  if child.returncode != 0:
    raise SystemExit(f'bench/pipeline_bench.py: the {stage} stage failed '
                     f'(exit {child.returncode}); its output is above.')
  with open(result_path) as f:
    result = json.load(f)
  return child, result, {'before': load_before, 'after': run_profile.machine_load()}


def measure_floor(args: argparse.Namespace, data_root: str) -> Dict[str, object]:
  child, result, load = _measure(args, data_root, 'floor', args.beam_workers[0])
  windows = [run_profile.Window(*w) for w in result['windows']]
  rows = run_profile.component_rows(windows, child.samples)
  by_name = {row['component']: row for row in rows}
  return {'train_seconds': by_name['train']['seconds'],
          'train_cpu_seconds': by_name['train']['cpu_seconds'],
          'decode_seconds': by_name['decode']['seconds'],
          'process_seconds': round(child.seconds, 1),
          'process_cpu_seconds': round(child.cpu_seconds, 1),
          'peak_rss_mib': run_profile.mib(child.peak_rss),
          'steps': rows, 'epochs_run': result['epochs_run'],
          'examples': result['examples'], 'machine_load': load}


def measure_pipeline(args: argparse.Namespace, data_root: str, beam_workers: int,
                     floor: Dict[str, object]) -> Dict[str, object]:
  shutil.rmtree(_run_dir(args, beam_workers), ignore_errors=True)
  child, result, load = _measure(args, data_root, 'pipeline', beam_workers)
  runner_start, runner_end = result['runner']
  metadata_path = os.path.join(_run_dir(args, beam_workers), 'metadata.sqlite')
  windows = run_profile.component_windows(metadata_path, names.PIPELINE_NAME)
  components = run_profile.component_rows(windows, child.samples)
  runner_seconds = runner_end - runner_start
  trainer_seconds = sum(w.seconds for w in windows if w.name == names.TRAINER)
  non_training = runner_seconds - trainer_seconds
  ratio = runner_seconds / floor['train_seconds']
  runner_cpu = run_profile.cpu_seconds_by_window(
      child.samples, [run_profile.Window('runner', runner_start, runner_end)])['runner']
  trainer_cpu = sum(c['cpu_seconds'] for c in components if c['component'] == names.TRAINER)
  return {
      'beam_workers': beam_workers,
      'beam_pipeline_args': list(_pipeline_config(
          args, data_root, _run_dir(args, beam_workers), beam_workers).beam_pipeline_args),
      'runner_seconds': round(runner_seconds, 1),
      'process_seconds': round(child.seconds, 1),
      'trainer_seconds': round(trainer_seconds, 1),
      'non_training_seconds': round(non_training, 1),
      'orchestrator_seconds': round(runner_seconds - sum(w.seconds for w in windows), 1),
      'ratio_to_floor': round(ratio, 2),
      'runner_cpu_seconds': round(runner_cpu, 1),
      'non_training_cpu_seconds': round(runner_cpu - trainer_cpu, 1),
      'cpu_ratio_to_floor': round(runner_cpu / floor['train_cpu_seconds'], 2),
      'peak_rss_mib': run_profile.mib(child.peak_rss),
      'orchestrator_peak_rss_mib': run_profile.mib(run_profile.peak_rss_by_window(
          child.samples, windows)[run_profile.OUTSIDE_COMPONENTS]),
      'components': components,
      'targets_met': {f'ratio <= {MAX_RATIO_TO_FLOOR}': ratio <= MAX_RATIO_TO_FLOOR,
                      f'non-training <= {MAX_NON_TRAINING_S:.0f} s':
                          non_training <= MAX_NON_TRAINING_S},
      'machine_load': load,
  }


def _cell(value: Optional[float], fmt: str) -> str:
  return '-' if value is None else format(value, fmt)


def format_table(floor: Dict[str, object], runs: List[Dict[str, object]]) -> str:
  """Components down; per pipeline run its wall s, CPU s and peak MiB."""
  names = []
  for run in runs:
    names += [c['component'] for c in run['components'] if c['component'] not in names]
  header = f'{"":<24}' + ''.join(
      f'{"beam_workers=" + str(r["beam_workers"]):>30}' for r in runs)
  lines = [header, f'{"":<24}' + f'{"wall s":>10}{"CPU s":>8}{"peak MiB":>12}' * len(runs)]
  for name in names:
    cells = ''
    for run in runs:
      row = next((c for c in run['components'] if c['component'] == name), None)
      cells += (f'{_cell(row and row["seconds"], ".1f"):>10}'
                f'{_cell(row and row["cpu_seconds"], ".1f"):>8}'
                f'{_cell(row and row["peak_rss_mib"], ".0f"):>12}')
    lines.append(f'{name:<24}{cells}')
  for wall, cpu, label in (
      ('orchestrator_seconds', None, 'between components'),
      ('runner_seconds', 'runner_cpu_seconds', 'pipeline total'),
      ('non_training_seconds', 'non_training_cpu_seconds', 'non-training total'),
      ('ratio_to_floor', 'cpu_ratio_to_floor', 'ratio to floor (x)')):
    lines.append(f'{label:<24}' + ''.join(
        f'{r[wall]:>10}{r[cpu] if cpu else "":>8}{"":>12}' for r in runs))
  lines.append(f'{"peak RSS, whole run":<24}' +
               ''.join(f'{"":>18}{r["peak_rss_mib"]:>12.0f}' for r in runs))
  lines += ['', f'floor (train() on in-memory arrays): {floor["train_seconds"]:.1f} s wall, '
                f'{floor["train_cpu_seconds"]:.1f} s CPU, peak RSS '
                f'{floor["peak_rss_mib"]:.0f} MiB (decoding BUSI first took '
                f'{floor["decode_seconds"]:.1f} s, not counted)']
  return '\n'.join(lines)


def main(argv: Sequence[str]) -> int:
  args = parse_args(argv)
  busi_root = data_root.find_data_root(args.data_root or None)
  if busi_root is None:
    raise SystemExit('bench/pipeline_bench.py: ' + data_root.not_found_message(args.data_root))
  if args.stage:
    _run_stage(args, busi_root)
    return 0

  os.makedirs(os.path.abspath(args.work_dir), exist_ok=True)
  started = datetime.datetime.now(datetime.timezone.utc)
  floor = measure_floor(args, busi_root)
  runs = []
  for workers in args.beam_workers:
    runs.append(measure_pipeline(args, busi_root, workers, floor))
    table = format_table(floor, runs)
    print('\n' + table, flush=True)
    _write(args, argv, started, busi_root, floor, runs, table)
  return 0


_NOTE = ('machine_load is the 1-minute load average before and after each '
         'measurement. The measured job itself adds about the core count; well '
         'above that, other jobs shared the machine and stretched wall times, so '
         'compare only ratios within this file and prefer CPU seconds. Peak RSS '
         'sums the process tree (shared pages counted per process); components '
         'run in one process, so a component\'s peak includes memory its '
         'predecessors left behind.')


def _write(args: argparse.Namespace, argv: Sequence[str], started: datetime.datetime,
           busi_root: str, floor: Dict[str, object], runs: List[Dict[str, object]],
           table: str) -> None:
  """Writes the results so far: a long run interrupted still leaves its numbers."""
  results = {
      'date': started.isoformat(timespec='seconds'),
      'command': 'python -m bench.pipeline_bench ' + ' '.join(shlex.quote(a) for a in argv),
      'note': _NOTE,
      'busi_root': busi_root, 'model': args.model, 'epochs': args.epochs,
      'beam_workers_planned': args.beam_workers,
      'floor': floor, 'pipeline_runs': runs, 'table': table,
  }
  results_file.write(results, args.output)


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
