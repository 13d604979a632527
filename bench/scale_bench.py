"""How the data half of the pipeline grows with the data: `make bench-scale`.

Runs ImageExampleGen -> StatisticsGen -> (ImportSchemaGen) -> Transform, the
pipeline's own components with its own settings, on BUSI-like datasets of k
times BUSI's size (bench/busi_like.py, cached under outputs/). Per size: wall
time, CPU time and peak process-tree RSS, per component and in all, and time
per image; then the fitted growth: seconds = fixed + per-image * n, and the
exponents of time and memory against n (1 and 0 are linear time and flat
memory), for wall and for CPU seconds. Prints a
table and writes bench/results/scale.json.

  make bench-scale                      # 1x, 10x, 50x
  make bench-scale ARGS="--sizes 1,2,3"
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
from typing import Dict, List, Sequence

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from tfx import v1 as tfx

from bench import busi_like
from bench import growth
from bench import results_file
from bench import run_profile
from contracts import configs
from contracts import names
from dataset import data_root
from orchestration import local
from pipeline import pipeline as pipeline_lib

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(_PROJECT_DIR, 'bench', 'results', 'scale.json')
DEFAULT_WORK_DIR = os.path.join(_PROJECT_DIR, 'outputs', 'bench', 'scale')
DEFAULT_CACHE_DIR = os.path.join(_PROJECT_DIR, 'outputs', 'bench', 'busi_like')


def _sizes(text: str) -> List[int]:
  try:
    sizes = sorted({int(part) for part in text.split(',')})
  except ValueError:
    raise argparse.ArgumentTypeError(
        f'--sizes takes comma-separated multiples of BUSI (e.g. 1,10,50), got {text!r}')
  if sizes[0] < 1:
    raise argparse.ArgumentTypeError(f'--sizes must be 1 or more, got {text!r}')
  return sizes


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-root', default='',
                      help='BUSI folder the datasets are made from; default: as `make run`')
  parser.add_argument('--sizes', type=_sizes, default=[1, 10, 50],
                      help='dataset sizes in multiples of BUSI (default 1,10,50)')
  parser.add_argument('--beam-workers', type=int, default=1,
                      help='as local_runner --beam-workers (default 1, in process, as '
                           'local_runner; 0: a worker process per core)')
  parser.add_argument('--cache-dir', default=DEFAULT_CACHE_DIR,
                      help='generated datasets, kept between runs')
  parser.add_argument('--work-dir', default=DEFAULT_WORK_DIR,
                      help='pipeline outputs of the measured runs (emptied first)')
  parser.add_argument('--output', default=DEFAULT_OUTPUT, help='JSON results file')
  parser.add_argument('--stage-dataset', help=argparse.SUPPRESS)  # child: run one size
  parser.add_argument('--stage-result', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.beam_workers < 0:
    parser.error(f'--beam-workers must be 0 or more, got {args.beam_workers}')
  return args


def _config(dataset_root: str, output_dir: str, beam_workers: int) -> configs.PipelineConfig:
  """`local_runner.py`'s configuration for this data, uncached, keeping label conflicts.

  The k copies of each BUSI scan are near-duplicates of it by design, and at
  10x their clouds of hashes bridge scans of different classes into one group
  (1000 of 7800 files at 10x). The default policy would drop those groups and
  stop the run; the bench measures what every image costs, so it keeps them.
  """
  return local.local_config(
      dataset_root, output_dir,
      data=dataclasses.replace(configs.DataConfig(), label_conflicts='keep'),
      enable_cache=False, beam_workers=beam_workers)


def data_pipeline(config: configs.PipelineConfig) -> tfx.dsl.Pipeline:
  """The pipeline's components up to Transform, configured as create_pipeline does.

  The Transform reads the imported schema directly: the validation gate in
  between only passes it on.
  """
  example_gen = pipeline_lib.example_gen_component(config)
  schema_importer = pipeline_lib.schema_component(config)
  statistics_gen = pipeline_lib.statistics_component(example_gen.outputs['examples'],
                                                     schema_importer.outputs['schema'])
  transform = pipeline_lib.transform_component(
      config, example_gen.outputs['examples'], schema_importer.outputs['schema'])
  return tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name, pipeline_root=config.pipeline_root,
      components=[example_gen, schema_importer, statistics_gen, transform],
      enable_cache=False,
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          config.metadata_path),
      beam_pipeline_args=list(config.beam_pipeline_args))


def _run_stage(args: argparse.Namespace) -> None:
  config = _config(args.stage_dataset, args.work_dir, args.beam_workers)
  start = time.time()
  local.run_dag(data_pipeline(config), config.metadata_path)
  with open(args.stage_result, 'w') as f:
    json.dump({'runner': [start, time.time()], 'metadata_path': config.metadata_path}, f)


def count_images(folder: str) -> int:
  return sum(1 for label in os.listdir(folder)
             for name in os.listdir(os.path.join(folder, label))
             if '_mask' not in name)


def measure_size(args: argparse.Namespace, busi_root: str, size: int) -> Dict[str, object]:
  generate_start = time.time()
  dataset_root = busi_like.dataset(busi_root, os.path.abspath(args.cache_dir), size)
  generate_seconds = time.time() - generate_start
  work_dir = os.path.join(os.path.abspath(args.work_dir), f'{size}x')
  shutil.rmtree(work_dir, ignore_errors=True)
  os.makedirs(work_dir)
  result_path = os.path.join(work_dir, 'stage.json')
  load_before = run_profile.machine_load()
  child = run_profile.run_sampled(
      [sys.executable, '-m', 'bench.scale_bench', '--stage-dataset', dataset_root,
       '--stage-result', result_path, '--work-dir', work_dir,
       '--beam-workers', str(args.beam_workers)], run_profile.project_env())
  if child.returncode != 0:
    raise SystemExit(f'bench/scale_bench.py: the {size}x run failed '
                     f'(exit {child.returncode}); its output is above.')
  with open(result_path) as f:
    result = json.load(f)
  runner_start, runner_end = result['runner']
  runner_seconds = runner_end - runner_start
  runner_cpu = run_profile.cpu_seconds_by_window(
      child.samples, [run_profile.Window('runner', runner_start, runner_end)])['runner']
  windows = run_profile.component_windows(result['metadata_path'], names.PIPELINE_NAME)
  images = count_images(dataset_root)
  return {
      'size': size, 'images': images,
      'dataset_bytes': sum(os.path.getsize(os.path.join(d, n))
                           for d, _, names in os.walk(dataset_root) for n in names),
      'generate_seconds': round(generate_seconds, 1),
      'runner_seconds': round(runner_seconds, 1),
      'ms_per_image': round(1000 * runner_seconds / images, 1),
      'runner_cpu_seconds': round(runner_cpu, 1),
      'cpu_ms_per_image': round(1000 * runner_cpu / images, 1),
      'peak_rss_mib': run_profile.mib(child.peak_rss),
      'components': run_profile.component_rows(windows, child.samples),
      'machine_load': {'before': load_before, 'after': run_profile.machine_load()},
  }


def format_table(runs: Sequence[Dict[str, object]]) -> str:
  """Sizes down; per component its wall seconds, CPU seconds and peak MiB."""
  names = [c['component'] for c in runs[0]['components']]
  lines = [f'{"size":>5}{"images":>8}{"wall s":>8}{"ms/img":>8}{"CPU s":>8}'
           f'{"CPU ms/img":>11}{"peak MiB":>10}  ' +
           '  '.join(f'{name} (wall s, CPU s, MiB)' for name in names)]
  for run in runs:
    cells = '  '.join(
        f'{c["seconds"]:>.1f}, {c["cpu_seconds"]:.1f}, {_mib_text(c["peak_rss_mib"])}'
        .rjust(len(c["component"]) + 20) for c in run['components'])
    lines.append(f'{str(run["size"]) + "x":>5}{run["images"]:>8}{run["runner_seconds"]:>8.1f}'
                 f'{run["ms_per_image"]:>8.1f}{run["runner_cpu_seconds"]:>8.1f}'
                 f'{run["cpu_ms_per_image"]:>11.1f}{run["peak_rss_mib"]:>10.0f}  {cells}')
  return '\n'.join(lines)


def _mib_text(mib) -> str:
  return '-' if mib is None else f'{mib:.0f}'


def main(argv: Sequence[str]) -> int:
  args = parse_args(argv)
  if args.stage_dataset:
    _run_stage(args)
    return 0
  busi_root = data_root.find_data_root(args.data_root or None)
  if busi_root is None:
    raise SystemExit('bench/scale_bench.py: ' + data_root.not_found_message(args.data_root))
  started = datetime.datetime.now(datetime.timezone.utc)
  runs = []
  for size in args.sizes:
    runs.append(measure_size(args, busi_root, size))
    print(f'{size}x: {runs[-1]["runner_seconds"]:.1f} s, '
          f'{runs[-1]["ms_per_image"]:.1f} ms/image, peak {runs[-1]["peak_rss_mib"]:.0f} MiB',
          flush=True)
    _write(args, argv, started, busi_root, runs)
  return 0


def _write(args: argparse.Namespace, argv: Sequence[str], started: datetime.datetime,
           busi_root: str, runs: List[Dict[str, object]]) -> None:
  """Writes the results so far: a long run interrupted still leaves its numbers."""
  table = format_table(runs)
  print('\n' + table)
  results = {
      'date': started.isoformat(timespec='seconds'),
      'command': 'python -m bench.scale_bench ' + ' '.join(shlex.quote(a) for a in argv),
      'note': ('Wall times on a machine shared with other jobs (see machine_load): '
               'compare only ratios within this file, and prefer CPU seconds, which '
               'other jobs stretch much less. Peak RSS sums the process tree '
               '(shared pages counted per process).'),
      'source': busi_root, 'beam_workers': args.beam_workers,
      'sizes_planned': args.sizes, 'runs': runs, 'table': table,
      'growth': _growth(runs, 'runner_seconds') if len(runs) > 1 else None,
      'growth_cpu': _growth(runs, 'runner_cpu_seconds') if len(runs) > 1 else None,
      'targets': growth.targets(runs, 'ms_per_image') if len(runs) > 1 else None,
      'targets_cpu': growth.targets(runs, 'cpu_ms_per_image') if len(runs) > 1 else None,
  }
  if results['growth']:
    print(json.dumps({k: results[k] for k in ('growth', 'growth_cpu', 'targets', 'targets_cpu')},
                     indent=1))
  results_file.write(results, args.output)


def _growth(runs: Sequence[Dict[str, object]], seconds_key: str) -> Dict[str, float]:
  return growth.fit([r['images'] for r in runs], [r[seconds_key] for r in runs],
                    [r['peak_rss_mib'] for r in runs])


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
