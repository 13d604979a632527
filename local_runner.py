"""Runs the pipeline on this machine: LocalDagRunner, SQLite ML Metadata, local Beam.

    python local_runner.py --data-root PATH [--model seed_cnn] [--epochs 5] ...
    python local_runner.py --data-root busi=PATH --data-root bus_bra=PATH \
        --manifest-columns bus_bra=bus_bra ...

With no --data-root it looks for BUSI at $BUSI_DIR, data/Dataset_BUSI_with_GT
and ../shared/data/busi/Dataset_BUSI_with_GT, in that order. The run itself is
`orchestration.local.run`; this program turns flags into its config.
"""

import argparse
import contextlib
import dataclasses
import fcntl
import os
import sys
import time
from typing import List, Sequence

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)

from components import atomic_pusher
from components.validation_gate import DataAnomaliesError
from contracts import configs
from dataset import data_audit
from dataset import data_root
from dataset import image_files
from dataset import sites as sites_lib
from models import registry
from orchestration import beam_runners
from orchestration import config_flags
from orchestration import local
from orchestration import metadata_health
from orchestration import run_failures
from run_report import build as report_build

# Held (flock) in the output dir while a run uses it; see `exclusive_output_dir`.
LOCK_FILE_NAME = '.run.lock'


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
  parser.add_argument('--data-root', action='append', default=[], metavar='[NAME=]PATH',
                      help='a folder with one sub-folder per class, or with a manifest '
                           '(see --manifest-columns); repeat as NAME=PATH for several '
                           'sites (a bare PATH is the site named default)')
  parser.add_argument('--manifest-columns', action='append', default=[],
                      metavar='SITE=PRESET|FILE.json',
                      help='how SITE\'s manifest names its columns (repeatable; presets: '
                           f'{", ".join(configs.MANIFEST_PRESETS)}; default: '
                           f'{configs.ManifestColumns().manifest} with columns image, '
                           'label, mask, patient_id, device)')
  parser.add_argument('--output-dir', default='outputs',
                      help='pipeline artifacts, ML Metadata and serving_model/ go here')
  parser.add_argument('--model', choices=registry.MODEL_CHOICES, default=defaults.model.name)
  parser.add_argument('--image-size', type=int, default=None,
                      help='side of the square model input (default: ' + ', '.join(
                          f'{name} {registry.spec(name).image_size}'
                          for name in registry.MODEL_CHOICES) + ')')
  parser.add_argument('--epochs', type=int, default=None,
                      help='default: the model\'s own (' + ', '.join(
                          f'{name} {registry.spec(name).epochs}'
                          for name in registry.MODEL_CHOICES) + ')')
  parser.add_argument('--batch-size', type=int, default=defaults.training.batch_size)
  parser.add_argument('--splits', type=_split_ratios, default=defaults.data.splits,
                      help='train,eval,test relative sizes (default 70,15,15)')
  config_flags.add_evaluation_flags(parser)
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
  parser.add_argument('--retrain-unchanged', action='store_true',
                      help='run even when the served model was trained on this very '
                           'data, with this code, training configuration and blessing '
                           'rules (by default such a run stops at once, saying so)')
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
  parser.add_argument('--drift-policy', choices=configs.DRIFT_POLICIES,
                      default=defaults.data.drift_policy,
                      help='data that drifted from the served model\'s training data '
                           '(thresholds in schema/schema.pbtxt): warn (default) names '
                           'it in the summary; stop ends the run before training')
  args = parser.parse_args(argv)
  if args.manifest_columns and not args.data_root:
    parser.error('--manifest-columns needs the --data-root of its site')
  try:
    args.sites = sites_lib.build_sites(args.data_root, args.manifest_columns)
  except sites_lib.SiteSpecError as e:
    parser.error(str(e))
  if args.beam_workers < 0:
    parser.error(f'--beam-workers must be 0 (one per core) or more, got {args.beam_workers}')
  if args.beam_runner == 'portable':
    try:
      args.portable_beam_args = beam_runners.portable_loopback_args(args.job_endpoint)
    except beam_runners.BeamArgsError as e:
      parser.error(str(e))
  model_spec = registry.spec(args.model)
  # A size below the floor gets ModelConfig's own message; this check is for the rest.
  if (args.image_size is not None and args.image_size > 0
      and args.image_size % model_spec.image_size_multiple):
    parser.error(f'--image-size must be a multiple of {model_spec.image_size_multiple} '
                 f'for {args.model}, got {args.image_size}')
  return args


def build_config(args: argparse.Namespace, data_root_dir: str = '',
                 sites: Sequence[configs.Site] = ()) -> configs.PipelineConfig:
  """The run's config: of `sites`, or of `data_root_dir` as the one default site."""
  data = sites_lib.with_sites(
      dataclasses.replace(configs.DataConfig(), splits=args.splits,
                          max_quarantined_fraction=args.max_quarantined_fraction,
                          strict=args.strict, label_conflicts=args.label_conflicts,
                          drift_policy=args.drift_policy),
      sites or (configs.Site(configs.DEFAULT_SITE, data_root_dir),))
  return local.local_config(
      data.data_root, args.output_dir,
      data=data,
      model=dataclasses.replace(configs.ModelConfig(), name=args.model,
                                image_size=(registry.spec(args.model).image_size
                                            if args.image_size is None else args.image_size)),
      training=dataclasses.replace(configs.TrainingConfig(),
                                   epochs=(registry.spec(args.model).epochs
                                           if args.epochs is None else args.epochs),
                                   batch_size=args.batch_size),
      evaluation=config_flags.evaluation_config(args),
      keep_served_versions=args.keep_versions,
      enable_cache=not args.no_cache,
      beam_workers=args.beam_workers,
      beam_pipeline_args=(args.portable_beam_args if args.beam_runner == 'portable'
                          else None))


def run(config: configs.PipelineConfig, retrain_unchanged: bool = False) -> int:
  """Runs the pipeline and prints its summary; returns the process exit code.

  Unless `retrain_unchanged`, a run on the served model's own data, code,
  training configuration and blessing rules prints one line and returns 0.
  """
  output_dir = os.path.dirname(config.pipeline_root)
  problem = metadata_health.store_problem(config.metadata_path)
  if problem:
    print(problem, file=sys.stderr)
    return 1
  unchanged = None if retrain_unchanged else local.unchanged_since_served(config)
  if unchanged:
    print(unchanged)
    return 0
  for gone in metadata_health.forget_missing_pushes(config.metadata_path):
    print(f'The model version pushed to {gone} is no longer on disk; it will be '
          'pushed again if blessed.')
  started = time.time()
  try:
    summary = local.run(config)
  except DataAnomaliesError as e:
    print(f'\nStopped at data validation: {e}', file=sys.stderr)
    return 1
  except data_audit.DataAuditError as e:
    print(f'\nStopped at the data audit: {e}', file=sys.stderr)
    return 1
  except atomic_pusher.PushError as e:
    print(f'\nStopped at the push: {e}', file=sys.stderr)
    return 1
  except Exception as e:  # pylint: disable=broad-except
    advice = run_failures.advice(e, output_dir)
    if advice is None:
      raise
    print(f'\nStopped: {advice}', file=sys.stderr)
    return 1
  print('\n' + summary.format())
  print(f'\nFinished in {time.time() - started:.0f} s. Outputs under {output_dir}')
  print(f'Report: {report_build.build_report(output_dir, summary.run_id, config.pipeline_name)}')
  return 0


def _absolute(site: configs.Site) -> configs.Site:
  return dataclasses.replace(site, root=os.path.abspath(site.root))


def main(argv: List[str]) -> int:
  args = parse_args(argv)
  for site in args.sites:
    if not os.path.isdir(site.root):
      problem = image_files.layout_problem(site.root, configs.DataConfig().class_names)
      print(f'--data-root: {_where(args.sites, site)}{problem}.', file=sys.stderr)
      return 2
  if args.sites:
    sites = tuple(_absolute(site) for site in args.sites)
  else:
    found = data_root.find_data_root()
    if found is None:
      print(data_root.not_found_message(None), file=sys.stderr)
      return 2
    sites = (configs.Site(configs.DEFAULT_SITE, found),)
  config, message = config_flags.config_or_message(
      'local_runner.py', lambda: build_config(args, sites=sites))
  if message:
    print(message, file=sys.stderr)
    return 2
  for site in sites:
    problem = sites_lib.layout_problem(site, config.data.class_names)
    if problem:
      print(f'--data-root: {_where(sites, site)}{problem}.', file=sys.stderr)
      return 2
  output_dir = os.path.abspath(args.output_dir)
  try:
    with exclusive_output_dir(output_dir):
      return run(config, args.retrain_unchanged)
  except OutputDirBusyError as e:
    print(e, file=sys.stderr)
    return 2


def _where(sites: Sequence[configs.Site], site: configs.Site) -> str:
  """`site NAME: ` when the run names its sites."""
  return '' if [s.name for s in sites] == [configs.DEFAULT_SITE] else f'site {site.name}: '


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
