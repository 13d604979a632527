"""The pipeline on this machine, as a library: LocalDagRunner, SQLite ML Metadata, local Beam.

`local_runner.py` fills a config from its flags and the benches fill one in
code; both run it here, so a benchmark measures what `make run` runs.
"""

import dataclasses
import os
from typing import Optional, Tuple

from tfx import v1 as tfx

from blessing import rules
from components import served_data
from contracts import configs
from observability import progress
from observability import run_summary
from orchestration import beam_runners
from pipeline import pipeline as pipeline_lib

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def local_config(data_root: str, output_dir: str, *,
                 data: configs.DataConfig = configs.DataConfig(),
                 model: configs.ModelConfig = configs.ModelConfig(),
                 training: configs.TrainingConfig = configs.TrainingConfig(),
                 evaluation: configs.EvaluationConfig = configs.EvaluationConfig(),
                 keep_served_versions: int = configs.PipelineConfig.keep_served_versions,
                 enable_cache: bool = True,
                 beam_workers: int = 1,
                 beam_pipeline_args: Optional[Tuple[str, ...]] = None
                 ) -> configs.PipelineConfig:
  """The configuration of a local run reading `data_root`, writing under `output_dir`.

  Artifacts go to `<output_dir>/tfx`, ML Metadata to `<output_dir>/metadata.sqlite`
  and pushed models to `<output_dir>/serving_model`. Beam runs DirectRunner with
  `beam_workers` as `beam_runners.local_direct_args` takes it, unless
  `beam_pipeline_args` names other Beam arguments (e.g.
  `beam_runners.portable_loopback_args`).
  """
  output_dir = os.path.abspath(output_dir)
  return configs.PipelineConfig(
      pipeline_root=os.path.join(output_dir, 'tfx'),
      serving_dir=os.path.join(output_dir, 'serving_model'),
      metadata_path=os.path.join(output_dir, 'metadata.sqlite'),
      data=dataclasses.replace(data, data_root=data_root),
      model=model,
      training=training,
      evaluation=evaluation,
      keep_served_versions=keep_served_versions,
      enable_cache=enable_cache,
      beam_pipeline_args=(beam_runners.local_direct_args(beam_workers)
                          if beam_pipeline_args is None else beam_pipeline_args))


def run_dag(dag: tfx.dsl.Pipeline, metadata_path: str) -> None:
  """Runs `dag` under LocalDagRunner, its ML Metadata in `metadata_path`."""
  # Beam's worker processes import the components and models by module path.
  os.environ['PYTHONPATH'] = os.pathsep.join(
      p for p in (_PROJECT_DIR, os.environ.get('PYTHONPATH')) if p)
  os.makedirs(os.path.dirname(metadata_path), exist_ok=True)
  tfx.orchestration.LocalDagRunner().run(dag)


def unchanged_since_served(config: configs.PipelineConfig) -> Optional[str]:
  """The line to print instead of running, when the served model came from this
  very data, code and configuration; None otherwise.

  It costs one fingerprint of the data (ImageExampleGen's), not a TFX run, so a
  scheduled run with nothing new takes seconds even with a fresh ML Metadata.
  """
  return served_data.unchanged_since_served(
      config.model_serving_dir, served_data.data_fingerprint(config.data),
      configs.resolved_trainer_config(config),
      rules.BlessingRules.of(config.evaluation).floors,
      config.evaluation.regression_tolerance)


def run(config: configs.PipelineConfig) -> run_summary.RunSummary:
  """Runs the pipeline with a progress line per component; returns the run's summary.

  Raises `DataAnomaliesError` or `DataAuditError` when the data stops the run,
  `PushError` when the push to the serving dir fails.
  """
  with progress.component_progress():
    run_dag(pipeline_lib.create_pipeline(config), config.metadata_path)
  return run_summary.summarize(config.metadata_path, config.pipeline_name,
                               config.data.class_names)
