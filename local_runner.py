"""Runs the pipeline on this machine: LocalDagRunner, SQLite ML Metadata, local Beam.

    python local_runner.py --data-root PATH [--model seed_cnn] [--epochs 5] ...

With no --data-root it looks for BUSI at $BUSI_DIR, data/Dataset_BUSI_with_GT
and ../shared/data/busi/Dataset_BUSI_with_GT, in that order.
"""

import argparse
import contextlib
import dataclasses
import fcntl
import os
import sys
import time
from typing import List, Optional

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from tfx import v1 as tfx

from components import data_audit
from components.validation_gate import DataAnomaliesError
from models import backbones
from pipeline import beam_runners
from pipeline import configs
from pipeline import pipeline as pipeline_lib
from pipeline import progress
from pipeline import run_summary
from run_report import build as report_build

_PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))
# Held (flock) in the output dir while a run uses it; see `exclusive_output_dir`.
LOCK_FILE_NAME = '.run.lock'


def find_data_root(explicit: Optional[str]) -> Optional[str]:
  candidates = [explicit] if explicit else [
      os.environ.get(configs.BUSI_ENV_VAR), *configs.BUSI_DEFAULT_DIRS]
  for candidate in candidates:
    if candidate and os.path.isdir(candidate):
      return os.path.abspath(candidate)
  return None


def _split_ratios(text: str) -> configs.SplitConfig:
  try:
    train, eval_, test = (int(part) for part in text.split(','))
  except ValueError:
    raise argparse.ArgumentTypeError(
        f'--splits takes three whole numbers train,eval,test (e.g. 70,15,15), got {text!r}')
  if min(train, eval_, test) <= 0:
    raise argparse.ArgumentTypeError(f'--splits must all be positive, got {text!r}')
  return configs.SplitConfig(train, eval_, test)


def _fraction(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    value = -1.0
  if not 0.0 <= value <= 1.0:
    raise argparse.ArgumentTypeError(
        f'--max-quarantined-fraction takes a number from 0 to 1 (e.g. 0.05), got {text!r}')
  return value


def parse_args(argv: List[str]) -> argparse.Namespace:
  defaults = configs.PipelineConfig(pipeline_root='', serving_dir='')
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-root', help='folder with one sub-folder per class')
  parser.add_argument('--output-dir', default='outputs',
                      help='pipeline artifacts, ML Metadata and serving_model/ go here')
  parser.add_argument('--model', choices=configs.MODEL_CHOICES, default=defaults.model.name)
  parser.add_argument('--image-size', type=int, default=None,
                      help='side of the square model input (default: 180 for '
                           f'seed_cnn, {defaults.model.image_size} otherwise)')
  parser.add_argument('--ensemble-size', type=int, default=defaults.model.ensemble_size,
                      help='busi_net networks trained from different seeds and '
                           f'served as their average (default {defaults.model.ensemble_size})')
  parser.add_argument('--backbone-weights', default='',
                      help='for --model mobilenet_v2 or efficientnet_b0: a Keras .h5 file '
                           'of the ImageNet weights without the top (default: random '
                           'initial weights; nothing is downloaded)')
  parser.add_argument('--epochs', type=int, default=defaults.training.epochs)
  parser.add_argument('--batch-size', type=int, default=defaults.training.batch_size)
  parser.add_argument('--splits', type=_split_ratios, default=defaults.data.splits,
                      help='train,eval,test relative sizes (default 70,15,15)')
  parser.add_argument('--min-accuracy', type=float,
                      default=defaults.evaluation.min_accuracy)
  parser.add_argument('--min-malignant-recall', type=float,
                      default=defaults.evaluation.min_malignant_recall)
  parser.add_argument('--regression-tolerance', type=float,
                      default=defaults.evaluation.regression_tolerance,
                      help='how far below the served model a candidate may fall')
  parser.add_argument('--keep-versions', type=int, default=defaults.keep_served_versions)
  parser.add_argument('--beam-workers', type=int, default=1,
                      help='Beam worker processes (1, the default: Beam runs in this '
                           'process; 0: one worker process per core, for folders far '
                           'larger than BUSI). On BUSI, in-process Beam measured 2.3x '
                           'less CPU and half the peak memory (bench/README.md)')
  parser.add_argument('--beam-runner', choices=('direct', 'portable'), default='direct',
                      help="direct (default): Beam's DirectRunner, see --beam-workers; "
                           "portable: Beam's PortableRunner at --job-endpoint")
  parser.add_argument('--job-endpoint', default=beam_runners.EMBEDDED_JOB_SERVICE,
                      help='for --beam-runner portable: a Beam job server (Flink, Spark) '
                           f'at HOST:PORT, or {beam_runners.EMBEDDED_JOB_SERVICE} '
                           '(the default) for Beam\'s own, in this process')
  parser.add_argument('--no-cache', action='store_true',
                      help='rerun every component instead of reusing cached results')
  parser.add_argument('--max-quarantined-fraction', type=_fraction,
                      default=defaults.data.max_quarantined_fraction,
                      help='stop when a larger share of the files is unusable '
                           '(default 0.05); see data_audit.md in the examples')
  parser.add_argument('--strict', action='store_true',
                      help='stop on any unusable file')
  parser.add_argument('--label-conflicts', choices=data_audit.LABEL_CONFLICT_POLICIES,
                      default=defaults.data.label_conflicts,
                      help='the same or near-same image under two classes: drop '
                           'the whole group (default), keep it, or fail the run')
  args = parser.parse_args(argv)
  if args.beam_runner == 'portable':
    try:
      args.portable_beam_args = beam_runners.portable_loopback_args(args.job_endpoint)
    except beam_runners.BeamArgsError as e:
      parser.error(str(e))
  if args.ensemble_size < 1:
    parser.error(f'--ensemble-size must be at least 1, got {args.ensemble_size}')
  if args.ensemble_size > 1 and args.model != 'busi_net':
    parser.error(f'--ensemble-size applies to busi_net only, not {args.model}')
  if args.backbone_weights:
    if args.model not in backbones.NAMES:
      parser.error(f'--backbone-weights applies to {" or ".join(backbones.NAMES)}, '
                   f'not {args.model}')
    if not os.path.isfile(args.backbone_weights):
      parser.error(f'--backbone-weights {args.backbone_weights!r} is not a file')
    args.backbone_weights = os.path.abspath(args.backbone_weights)
  return args


def build_config(args: argparse.Namespace, data_root: str) -> configs.PipelineConfig:
  output_dir = os.path.abspath(args.output_dir)
  image_size = args.image_size or (180 if args.model == 'seed_cnn'
                                   else configs.ModelConfig().image_size)
  return configs.PipelineConfig(
      pipeline_root=os.path.join(output_dir, 'tfx'),
      serving_dir=os.path.join(output_dir, 'serving_model'),
      metadata_path=os.path.join(output_dir, 'metadata.sqlite'),
      data=dataclasses.replace(configs.DataConfig(), data_root=data_root,
                               splits=args.splits,
                               max_quarantined_fraction=args.max_quarantined_fraction,
                               strict=args.strict,
                               label_conflicts=args.label_conflicts),
      model=dataclasses.replace(configs.ModelConfig(), name=args.model,
                                image_size=image_size, ensemble_size=args.ensemble_size,
                                backbone_weights=args.backbone_weights),
      training=dataclasses.replace(configs.TrainingConfig(), epochs=args.epochs,
                                   batch_size=args.batch_size),
      evaluation=dataclasses.replace(
          configs.EvaluationConfig(), min_accuracy=args.min_accuracy,
          min_malignant_recall=args.min_malignant_recall,
          regression_tolerance=args.regression_tolerance),
      keep_served_versions=args.keep_versions,
      enable_cache=not args.no_cache,
      beam_pipeline_args=(args.portable_beam_args if args.beam_runner == 'portable'
                          else beam_args(args.beam_workers)))


def beam_args(workers: int) -> tuple:
  if workers == 1:
    return ('--direct_running_mode=in_memory', '--direct_num_workers=1')
  return ('--direct_running_mode=multi_processing', f'--direct_num_workers={workers}')


def run(config: configs.PipelineConfig) -> int:
  """Runs the pipeline and prints its summary; returns the process exit code."""
  # Beam's worker processes import the components and models by module path.
  os.environ['PYTHONPATH'] = os.pathsep.join(
      p for p in (_PROJECT_DIR, os.environ.get('PYTHONPATH')) if p)
  os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
  started = time.time()
  try:
    with progress.component_progress():
      tfx.orchestration.LocalDagRunner().run(pipeline_lib.create_pipeline(config))
  except DataAnomaliesError as e:
    print(f'\nStopped at data validation: {e}', file=sys.stderr)
    return 1
  except data_audit.DataAuditError as e:
    print(f'\nStopped at the data audit: {e}', file=sys.stderr)
    return 1
  summary = run_summary.summarize(config.metadata_path, config.pipeline_name,
                                  config.data.class_names)
  print('\n' + summary.format())
  output_dir = os.path.dirname(config.pipeline_root)
  print(f'\nFinished in {time.time() - started:.0f} s. Outputs under {output_dir}')
  print(f'Report: {report_build.build_report(output_dir, summary.run_id, config.pipeline_name)}')
  return 0


def main(argv: List[str]) -> int:
  args = parse_args(argv)
  data_root = find_data_root(args.data_root)
  if data_root is None:
    where = (args.data_root if args.data_root else
             f'${configs.BUSI_ENV_VAR}, ' + ', '.join(configs.BUSI_DEFAULT_DIRS))
    print(f'No dataset found (looked at: {where}).\n'
          f'Download BUSI (Dataset_BUSI_with_GT) from {configs.BUSI_DOWNLOAD_URL}, '
          f'unpack it to data/Dataset_BUSI_with_GT or set {configs.BUSI_ENV_VAR}, '
          'or pass --data-root.', file=sys.stderr)
    return 2
  output_dir = os.path.abspath(args.output_dir)
  try:
    with exclusive_output_dir(output_dir):
      return run(build_config(args, data_root))
  except OutputDirBusyError as e:
    print(e, file=sys.stderr)
    return 2


class OutputDirBusyError(RuntimeError):
  """Another run holds the output dir's lock."""


@contextlib.contextmanager
def exclusive_output_dir(output_dir: str):
  """Holds an exclusive lock on `output_dir` while the body runs.

  Two runs on one output dir would interleave writes to ML Metadata's SQLite
  file and to the serving dir, so the second refuses. flock is released by the
  kernel when the process ends, however it ends: no stale lock to clean up.
  """
  os.makedirs(output_dir, exist_ok=True)
  with open(os.path.join(output_dir, LOCK_FILE_NAME), 'a+', encoding='utf-8') as lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      lock.seek(0)
      raise OutputDirBusyError(
          f'--output-dir {output_dir} is in use by another run '
          f'({lock.read().strip() or "unknown process"}); wait for it to finish '
          'or choose another --output-dir.') from None
    lock.truncate(0)
    lock.write(f'pid {os.getpid()}, started {time.strftime("%Y-%m-%d %H:%M:%S")}\n')
    lock.flush()
    yield


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
