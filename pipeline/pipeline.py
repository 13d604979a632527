"""`create_pipeline`: the one DAG every runner executes.

ImageExampleGen -> StatisticsGen -> ExampleValidator (against the curated
schema) -> DataValidationGate -> DataDriftCheck (against the served model's
data) -> Transform -> Trainer -> Evaluator (served model
as baseline) -> Pusher. Runners choose only the orchestrator, the paths and the
Beam arguments, whether the values of `run_parameters` are fixed or set
per run, and whether a DataFingerprint task comes first (Kubeflow's cache
keys on it).
"""

from typing import Any, Dict, Optional, Union

import tensorflow_data_validation as tfdv
from tfx import v1 as tfx
from tfx.dsl.components.base import base_component
from tfx.orchestration import data_types

from components import atomic_pusher
from components import byte_batched
from components import data_fingerprint
from components import drift_check
from components.image_example_gen import component as example_gen_lib
from components.served_baseline_evaluator import ServedBaselineEvaluator
from components.trainer import Trainer
from components.validation_gate import DataValidationGate
from contracts import configs
from contracts import names
from pipeline import eval_config
from pipeline import run_parameters as run_parameters_lib


def example_gen_component(
    config: configs.PipelineConfig,
    data_root: Optional[Union[str, data_types.RuntimeParameter]] = None,
    fingerprint: Optional[tfx.types.BaseChannel] = None):
  """ImageExampleGen on `data_root` (default: the configured one), under its node id.

  Named sites are part of the configuration, so `data_root` (a run parameter
  on Kubeflow) applies to a run of one unnamed root only. `fingerprint`: the
  `DataFingerprint` task's output, passed as ImageExampleGen's input fingerprint.
  """
  return example_gen_lib.image_example_gen(
      config.data, None if config.data.sites else data_root,
      served_model_dir=config.model_serving_dir,
      input_fingerprint=None if fingerprint is None else fingerprint.future()[0].value
  ).with_id(names.EXAMPLE_GEN)


def fingerprint_component(
    config: configs.PipelineConfig,
    data_root: Union[str, data_types.RuntimeParameter]) -> base_component.BaseComponent:
  """DataFingerprint of what ImageExampleGen will read, under its node id."""
  return data_fingerprint.DataFingerprint(
      input_base=example_gen_lib.default_input_base(config.data) if config.data.sites
      else data_root,
      sites=data_fingerprint.sites_parameter(config.data.sites),
      served_model_dir=config.model_serving_dir).with_id(names.DATA_FINGERPRINT)


def schema_component(config: configs.PipelineConfig) -> tfx.components.ImportSchemaGen:
  """The curated schema, as the orchestrator's containers see its file."""
  return tfx.components.ImportSchemaGen(
      schema_file=config.schema_file).with_id(names.SCHEMA_IMPORTER)


def statistics_component(examples: tfx.types.BaseChannel,
                         schema: tfx.types.BaseChannel) -> byte_batched.StatisticsGen:
  """StatisticsGen told by the schema that `image` and `mask` are images.

  Without it TFDV takes the encoded images for categorical strings and keeps
  sketches of their most frequent values, which hold whole PNGs: its memory
  grew with the dataset (bench/README.md). With `image_domain` they get
  byte-length statistics only. The most frequent values of the other strings
  come from fixed-size sketches: the exact counts TFDV makes by default cost a
  quarter more CPU, for file names and hashes that are all distinct anyway.
  """
  return byte_batched.StatisticsGen(
      examples=examples, schema=schema,
      stats_options=tfdv.StatsOptions(use_sketch_based_topk_uniques=True)
  ).with_id(names.STATISTICS_GEN)


def transform_component(config: configs.PipelineConfig, examples: tfx.types.BaseChannel,
                        schema: tfx.types.BaseChannel) -> tfx.components.Transform:
  """Transform as the pipeline runs it: analysed on train, applied to train and eval.

  The test split is left raw: only the Evaluator reads it, through the served
  model's own signature. Transform's own statistics are off: StatisticsGen
  already describes the raw splits, and statistics of the transformed tensors
  (every pixel a feature value) took a third to a half of its CPU while
  nothing reads them.
  """
  return tfx.components.Transform(
      examples=examples,
      schema=schema,
      preprocessing_fn=names.PREPROCESSING_FN,
      custom_config=config.transform_custom_config(),
      splits_config=tfx.proto.SplitsConfig(analyze=['train'],
                                           transform=['train', 'eval']),
      disable_statistics=True).with_id(names.TRANSFORM)


def pusher_config(config: configs.PipelineConfig) -> Dict[str, Any]:
  """What the Pusher needs for pruning and for the model card it writes."""
  return {
      atomic_pusher.KEEP_VERSIONS_KEY: config.keep_served_versions,
      atomic_pusher.CLASS_NAMES_KEY: list(config.data.class_names),
      atomic_pusher.TEST_SPLIT_KEY: config.evaluation.eval_split,
  }


def create_pipeline(config: configs.PipelineConfig,
                    run_parameters: Optional[run_parameters_lib.RunParameters] = None,
                    fingerprint_task: bool = False) -> tfx.dsl.Pipeline:
  """The DAG; `run_parameters` default to the configured values (`run_parameters.fixed`).

  `fingerprint_task`: for an orchestrator whose cache keys on a task's inputs
  and runs no ExampleGen driver (Kubeflow), a first task fingerprints the
  data and ImageExampleGen takes the fingerprint as an input
  (components/data_fingerprint.py).
  """
  parameters = run_parameters or run_parameters_lib.fixed(config)
  fingerprint = (fingerprint_component(config, parameters.data_root)
                 if fingerprint_task else None)
  example_gen = example_gen_component(
      config, parameters.data_root,
      None if fingerprint is None else fingerprint.outputs[data_fingerprint.FINGERPRINT_KEY])
  schema_importer = schema_component(config)
  statistics_gen = statistics_component(example_gen.outputs['examples'],
                                        schema_importer.outputs['schema'])
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_importer.outputs['schema']).with_id(names.EXAMPLE_VALIDATOR)
  validation_gate = DataValidationGate(
      anomalies=example_validator.outputs['anomalies'],
      schema=schema_importer.outputs['schema']).with_id(names.VALIDATION_GATE)
  validated_schema = validation_gate.outputs['validated_schema']
  data_drift_check = drift_check.DataDriftCheck(
      examples=example_gen.outputs['examples'], schema=validated_schema,
      served_model_dir=config.model_serving_dir,
      policy=config.data.drift_policy).with_id(names.DRIFT_CHECK)
  transform = transform_component(config, example_gen.outputs['examples'],
                                  validated_schema)
  # Under the 'stop' policy, nothing trains on data that drifted.
  transform.add_upstream_node(data_drift_check)
  trainer = Trainer(
      run_fn=names.RUN_FN,
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      schema=validated_schema,
      train_args=tfx.proto.TrainArgs(splits=['train']),
      eval_args=tfx.proto.EvalArgs(splits=['eval']),
      custom_config=config.trainer_custom_config(),
      epochs=parameters.epochs,
      warm_start=parameters.warm_start,
      served_model_dir=config.model_serving_dir).with_id(names.TRAINER)
  evaluator = ServedBaselineEvaluator(
      examples=example_gen.outputs['examples'],
      model=trainer.outputs['model'],
      eval_config=eval_config.create_eval_config(config.data.class_names,
                                                 config.evaluation.slice_by_device),
      example_splits=[config.evaluation.eval_split],
      serving_model_dir=config.model_serving_dir,
      class_names=config.data.class_names,
      min_accuracy=parameters.min_accuracy,
      min_malignant_recall=parameters.min_malignant_recall,
      regression_tolerance=parameters.regression_tolerance,
      min_site_malignant_examples=config.evaluation.min_site_malignant_examples
  ).with_id(names.EVALUATOR)
  pusher = atomic_pusher.ServingPusher(
      model=trainer.outputs['model'],
      model_blessing=evaluator.outputs['blessing'],
      evaluation=evaluator.outputs['evaluation'],
      examples=example_gen.outputs['examples'],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(
              base_directory=config.model_serving_dir)),
      custom_config=pusher_config(config)).with_id(names.PUSHER)

  return tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=config.pipeline_root,
      components=([fingerprint] if fingerprint else []) + [
          example_gen, schema_importer, statistics_gen, example_validator, validation_gate,
          data_drift_check, transform, trainer, evaluator, pusher],
      enable_cache=config.enable_cache,
      metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              config.metadata_path) if config.metadata_path else None),
      beam_pipeline_args=list(config.beam_pipeline_args))
