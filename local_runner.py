"""Runs the pipeline on this machine: LocalDagRunner, SQLite ML Metadata, local Beam.

    python local_runner.py --data-root PATH [--model seed_cnn] [--epochs 5] ...
    python local_runner.py --data-root busi=PATH --data-root bus_bra=PATH \
        --manifest-columns bus_bra=bus_bra ...

With no --data-root it looks for BUSI at $BUSI_DIR, data/Dataset_BUSI_with_GT
and ../shared/data/busi/Dataset_BUSI_with_GT, in that order. The run itself is
`orchestration.local.run`; this program turns flags into its config.

Every stop is one message on stderr and an exit code: 2 when nothing ran, 1
when the run stopped part-way (docs/invariants.md), including a stop by
SIGINT, SIGTERM or SIGHUP and any operating-system error.
"""

import argparse
import contextlib
import dataclasses
import fcntl
import os
import signal
import sys
import time
from typing import List, Sequence, Tuple


def _stopped_while_starting(signum: int, _frame) -> None:
  print(f'Stopped by {signal.Signals(signum).name} before the pipeline ran; nothing was '
        'run.', file=sys.stderr)
  os._exit(2)  # pylint: disable=protected-access  (no traceback from a half-done import)


# Loading TensorFlow below takes seconds: a signal then ends the program with
# one line, not a traceback of the import it interrupted. `main` takes over.
if __name__ == '__main__':
  for _signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    if signal.getsignal(_signum) is not signal.SIG_IGN:
      signal.signal(_signum, _stopped_while_starting)

# pylint: disable=wrong-import-position
import models  # noqa: E402,F401  (selects Keras 2 before TensorFlow loads)

from components import atomic_pusher
from components.validation_gate import DataAnomaliesError
from contracts import configs
from dataset import data_audit
from dataset import data_root
from dataset import exports
from dataset import image_files
from dataset import manifest
from dataset import sites as sites_lib
from orchestration import beam_runners
from orchestration import config_flags
from orchestration import local
from orchestration import metadata_health
from orchestration import run_failures
from run_report import build as report_build

# Held (flock) in the output dir while a run uses it; see `exclusive_output_dir`.
LOCK_FILE_NAME = '.run.lock'


def make_parser() -> argparse.ArgumentParser:
  """The pipeline flags both runners share, and where a local run writes."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  config_flags.add_pipeline_flags(parser)
  parser.add_argument('--output-dir', default='outputs',
                      help='pipeline artifacts, ML Metadata and serving_model/ go here')
  parser.add_argument('--retrain-unchanged', action='store_true',
                      help='run even when the served model was trained on this very '
                           'data, with this code, training configuration and blessing '
                           'rules (by default such a run stops at once, saying so)')
  return parser


def parse_args(argv: List[str]) -> argparse.Namespace:
  parser = make_parser()
  args = parser.parse_args(argv)
  config_flags.check_pipeline_flags(parser, args)
  if args.beam_runner == 'dataflow':
    parser.error('--beam-runner dataflow runs from kubeflow_runner.py only: its workers '
                 'run the pipeline image')
  if args.beam_runner == 'portable':
    try:
      args.portable_beam_args = beam_runners.portable_loopback_args(
          args.job_endpoint or beam_runners.EMBEDDED_JOB_SERVICE)
    except beam_runners.BeamArgsError as e:
      parser.error(str(e))
  return args


def _beam_pipeline_args(args: argparse.Namespace) -> Tuple[str, ...]:
  """The Beam arguments of the flags, --beam-arg last so that they override ours."""
  runner_args = (args.portable_beam_args if args.beam_runner == 'portable'
                 else beam_runners.local_direct_args(args.beam_workers))
  return runner_args + tuple(args.beam_arg)


def build_config(args: argparse.Namespace, data_root_dir: str = '',
                 sites: Sequence[configs.Site] = ()) -> configs.PipelineConfig:
  """The run's config: of `sites`, or of `data_root_dir` as the one default site."""
  data = config_flags.data_config(
      args, sites or (configs.Site(configs.DEFAULT_SITE, data_root_dir),))
  return local.local_config(
      data.data_root, args.output_dir,
      data=data,
      model=config_flags.model_config(args),
      training=config_flags.training_config(args),
      evaluation=config_flags.evaluation_config(args),
      keep_served_versions=args.keep_versions,
      enable_cache=not args.no_cache,
      beam_pipeline_args=_beam_pipeline_args(args))


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
  except KeyboardInterrupt as e:
    print(f'\nStopped by {run_failures.signal_name(e)} while the pipeline ran. Rerun the '
          'same command to resume: the components that finished are reused from the '
          'cache.', file=sys.stderr)
    return 1
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


def main(argv: List[str]) -> int:
  previous = run_failures.interrupt_on_termination()
  try:
    return _main(argv)
  except KeyboardInterrupt as e:
    print(f'Stopped by {run_failures.signal_name(e)} before the pipeline ran; '
          'nothing was run.', file=sys.stderr)
    return 2
  except Exception as e:  # pylint: disable=broad-except
    # `run` answers for the pipeline's own errors: what comes here came before it.
    detail = run_failures.os_error(e)
    if detail is None:
      raise
    print(f'Stopped before the pipeline ran: an operating-system error: {detail}.',
          file=sys.stderr)
    return 2
  finally:
    run_failures.restore_signals(previous)


def _main(argv: List[str]) -> int:
  args = parse_args(argv)
  note = data_root.unused_location_note(bool(args.sites))
  if note:
    print(f'Note: {note}')
  if not args.output_dir.strip():
    print('--output-dir needs a folder, got an empty value.', file=sys.stderr)
    return 2
  for site in args.sites:
    if not os.path.isdir(site.root):
      problem = image_files.layout_problem(site.root, configs.DataConfig().class_names)
      hint = (' (a ~ inside quotes or after = is not expanded by the shell: write the '
              'full path)' if site.root.startswith('~') else '')
      print(f'--data-root: {_where(args.sites, site)}{problem}{hint}.', file=sys.stderr)
      return 2
  if args.sites:
    sites = tuple(dataclasses.replace(site, root=os.path.abspath(site.root))
                  for site in args.sites)
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
    problem = sites_lib.layout_problem(site, config.data.class_names,
                                       config.data.newest_exports)
    if problem:
      print(f'--data-root: {_where(sites, site)}{problem}.', file=sys.stderr)
      return 2
  problem = _site_notes(sites, config.data.class_names, config.data.newest_exports)
  if problem:
    print(f'--data-root: {problem}.', file=sys.stderr)
    return 2
  output_dir = os.path.abspath(args.output_dir)
  try:
    with exclusive_output_dir(output_dir):
      return run(config, args.retrain_unchanged)
  except OutputDirError as e:
    print(e, file=sys.stderr)
    return 2


def _site_notes(sites: Sequence[configs.Site], class_names: Sequence[str],
                newest_exports: int) -> str:
  """Prints a note on each site that holds no image or ignores its columns.

  Returns why the run cannot start: no site holds anything at all. A site
  that holds only unusable files is left to the audit, whose report names
  each file; among several sites an empty one is a note, as the audit has
  it, since the others can still be read.
  """
  empty = []
  for site in sites:
    if exports.is_export_site(site.root):
      scan = sites_lib.scan(site, class_names, newest_exports)
      if not scan.images and not scan.quarantined:
        empty.append(f'{_where(sites, site)}its exports read '
                     f'({", ".join(exports.chosen(site.root, newest_exports))}) hold no image')
      continue
    if manifest.is_manifest_site(site.root, site.columns):
      continue
    if site.columns != configs.ManifestColumns():
      print(f'Note: --manifest-columns {site.name}=...: {site.root} holds no '
            f'{site.columns.manifest}, so the site is read as class folders and the '
            'columns are not used.')
    scan = image_files.scan_folder(site.root, class_names)
    if not scan.images and not scan.quarantined:
      empty.append(_where(sites, site) + next(
          e.reason for e in scan.ignored if e.file == image_files.SITE_FOLDER))
  if len(empty) == len(sites):
    return '; '.join(empty)
  for reason in empty:
    print(f'Note: {reason}.')
  return ''


def _where(sites: Sequence[configs.Site], site: configs.Site) -> str:
  """`site NAME: ` when the run names its sites."""
  return '' if [s.name for s in sites] == [configs.DEFAULT_SITE] else f'site {site.name}: '


class OutputDirError(RuntimeError):
  """The output dir cannot be used; the message says why, on one line."""


@contextlib.contextmanager
def exclusive_output_dir(output_dir: str):
  """Holds an exclusive lock on `output_dir` while the body runs.

  Two runs on one output dir would interleave writes to ML Metadata's SQLite
  file and to the serving dir, so the second refuses. flock is released by the
  kernel when the process ends, however it ends: no stale lock to clean up.
  """
  try:
    os.makedirs(output_dir, exist_ok=True)
    lock = open(os.path.join(output_dir, LOCK_FILE_NAME), 'a+', encoding='utf-8')
  except OSError as e:
    raise OutputDirError(f'--output-dir {output_dir} cannot be used: {e.strerror}'
                         f'{f" ({e.filename})" if e.filename else ""}; choose a folder '
                         'you can write to.') from None
  with lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      lock.seek(0)
      raise OutputDirError(
          f'--output-dir {output_dir} is in use by another run '
          f'({lock.read().strip() or "unknown process"}); wait for it to finish '
          'or choose another --output-dir.') from None
    lock.truncate(0)
    lock.write(f'pid {os.getpid()}, started {time.strftime("%Y-%m-%d %H:%M:%S")}\n')
    lock.flush()
    yield


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
