"""The per-site gate on the real Evaluator (TFMA) and Pusher under LocalDagRunner.

The examples come from two sites (tests/site_data.py): `busi` with all three
classes, and `bus_bra` without normal scans, whose malignant lesions are only
moderately dark. A model that misses them meets the floors on the whole test
split but not at `bus_bra`: the gate must withhold its blessing, push nothing
and say which site failed. A model that finds them everywhere is pushed, with
"n/a" (never NaN) for what `bus_bra` cannot measure.
"""

import dataclasses
import json
import math
import os

import re

import pytest
from tfx import v1 as tfx

from blessing import evaluation_metrics
from blessing import site_gate
from components import atomic_pusher
from components.served_baseline_evaluator import ServedBaselineEvaluator
from contracts import configs
from contracts import features
from contracts import names
from observability import run_summary
from orchestration import local
from pipeline import eval_config
from pipeline import pipeline as pipeline_lib
from serving import model_card
from serving import serving_dir
from run_report import build as report_build
from tests import site_data

_SITES = (
    site_data.Site('busi', 'LOGIQ E9', {'benign': 6, 'malignant': 12, 'normal': 6}),
    site_data.Site('bus_bra', 'Toshiba', {'benign': 6, 'malignant': 10},
                   malignant_lesion=75),
)
# Reached overall by both models; the weak one has malignant sensitivity 12/22.
_EVALUATION = configs.EvaluationConfig(min_accuracy=0.5, min_malignant_recall=0.5,
                                       min_site_malignant_examples=10,
                                       slice_by_device=True)
# Finds the moderately dark lesions of bus_bra (75) or only BUSI's dark ones (25).
_STRONG, _WEAK = 100, 50


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
  root = tmp_path_factory.mktemp('site_gate')
  examples = site_data.write_examples(str(root / 'examples'), _SITES)
  models = {level: site_data.save_rule_model(str(root / f'model_{level}'), level)
            for level in (_STRONG, _WEAK)}
  return {'root': root, 'examples': examples, 'models': models}


def _run(workspace, dark_level: int, output: str = 'out',
         run_floor: float = _EVALUATION.min_malignant_recall) -> run_summary.RunSummary:
  """Evaluates and pushes the rule model; `run_floor` is the run's malignant floor,
  which reaches the Evaluator as its `min_malignant_recall` parameter only."""
  config = local.local_config('', str(workspace['root'] / output), evaluation=_EVALUATION)
  examples = tfx.dsl.Importer(
      source_uri=workspace['examples'], artifact_type=tfx.types.standard_artifacts.Examples,
      properties={'split_names': '["test"]'}).with_id('ExamplesImporter')
  model = tfx.dsl.Importer(
      source_uri=workspace['models'][dark_level],
      artifact_type=tfx.types.standard_artifacts.Model,
      # As the Trainer records it; the Pusher's model card reads it.
      custom_properties={names.TRAINING_CONFIG_PROPERTY: json.dumps(
          dataclasses.asdict(config.training))}).with_id(f'ModelImporter{dark_level}')
  evaluator = ServedBaselineEvaluator(
      examples=examples.outputs['result'], model=model.outputs['result'],
      eval_config=eval_config.create_eval_config(features.CLASS_NAMES,
                                                 _EVALUATION.slice_by_device),
      example_splits=['test'], serving_model_dir=config.model_serving_dir,
      class_names=features.CLASS_NAMES,
      min_accuracy=_EVALUATION.min_accuracy,
      min_malignant_recall=run_floor,
      regression_tolerance=_EVALUATION.regression_tolerance,
      min_site_malignant_examples=_EVALUATION.min_site_malignant_examples
  ).with_id(names.EVALUATOR)
  pusher = atomic_pusher.ServingPusher(
      model=model.outputs['result'], model_blessing=evaluator.outputs['blessing'],
      evaluation=evaluator.outputs['evaluation'], examples=examples.outputs['result'],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(
              base_directory=config.model_serving_dir)),
      custom_config=pipeline_lib.pusher_config(config)).with_id(names.PUSHER)
  local.run_dag(tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name, pipeline_root=config.pipeline_root,
      components=[examples, model, evaluator, pusher],
      metadata_connection_config=tfx.orchestration.metadata
      .sqlite_metadata_connection_config(config.metadata_path),
      beam_pipeline_args=list(config.beam_pipeline_args)), config.metadata_path)
  workspace['serving'] = config.model_serving_dir
  return run_summary.summarize(config.metadata_path, config.pipeline_name,
                               features.CLASS_NAMES)


def _site(summary, name):
  return next(site for site in summary.sites.sites if site.site == name)


def test_a_model_worse_at_one_site_is_refused_and_the_site_named(workspace):
  summary = _run(workspace, _WEAK)
  assert summary.metrics[names.MALIGNANT_SENSITIVITY_METRIC] == pytest.approx(12 / 22)
  assert summary.metrics[names.ACCURACY_METRIC] >= _EVALUATION.min_accuracy
  assert not summary.blessed
  assert summary.sites.failed_sites == ('bus_bra',)
  assert _site(summary, 'busi').passed
  assert summary.failed_checks == [
      "site 'bus_bra': malignant_sensitivity = 0.0000, below the required 0.5000 "
      '(10 malignant test scans)']
  printed = summary.format()
  assert "Blessed: no (baseline: none served yet). Failed checks:\n  - site 'bus_bra'" in printed
  assert not re.search(r'\bnan\b', printed, re.IGNORECASE)
  assert summary.pushed_path is None
  assert serving_dir.served_versions(workspace['serving']) == []


def test_two_sites_one_without_normal_scans_push_a_model(workspace):
  summary = _run(workspace, _STRONG)
  assert summary.blessed and summary.failed_checks == []
  bus_bra = _site(summary, 'bus_bra')
  assert bus_bra.gated and bus_bra.malignant_examples == 10
  assert bus_bra.metrics[names.MALIGNANT_SENSITIVITY_METRIC] == 1.0
  assert bus_bra.metrics['normal_recall'] is None
  assert _site(summary, 'busi').metrics['normal_recall'] == 1.0
  printed = summary.format()
  assert 'Per site (gated with at least 10 malignant test scans):' in printed
  assert 'n/a' in printed and not re.search(r'\bnan\b', printed, re.IGNORECASE)
  (version,) = serving_dir.served_versions(workspace['serving'])
  assert summary.pushed_path == os.path.join(workspace['serving'], str(version))
  card = model_card.read_card(summary.pushed_path)
  assert set(card.site_metrics) == {'busi', 'bus_bra'}
  assert card.site_metrics['bus_bra']['normal_recall'] is None
  assert not any(isinstance(v, float) and math.isnan(v) for v in card.test_metrics.values())
  with open(os.path.join(summary.pushed_path, 'assets.extra', 'model_card.json')) as f:
    json.loads(f.read(), parse_constant=lambda token: pytest.fail(f'{token} in the card'))
  assert '## Per site' in model_card.to_markdown(card)
  page = open(report_build.build_report(str(workspace['root'] / 'out'), summary.run_id),
              encoding='utf-8').read()
  table = page[page.index('<h3>Per site</h3>'):]
  table = table[:table.index('</table>')]
  assert 'bus_bra' in table and '<td class="num">n/a</td>' in table
  assert not re.search(r'\bnan\b', page, re.IGNORECASE)


def test_device_and_site_x_device_slices_are_evaluated(workspace):
  evaluations = sorted((workspace['root'] / 'out' / 'tfx' / names.EVALUATOR /
                        'evaluation').iterdir())
  uri = str(evaluations[-1])
  by_device = evaluation_metrics.sliced_metrics(uri, features.CLASS_NAMES,
                                                [features.DEVICE_KEY])
  assert set(by_device) == {('LOGIQ E9',), ('Toshiba',)}
  crossed = evaluation_metrics.sliced_metrics(
      uri, features.CLASS_NAMES, [features.SITE_KEY, features.DEVICE_KEY])
  assert set(crossed) == {('busi', 'LOGIQ E9'), ('bus_bra', 'Toshiba')}
  assert site_gate.read(uri).passed


def test_against_the_served_model_a_regression_at_a_site_is_named(workspace):
  pushed = serving_dir.served_versions(workspace['serving'])
  summary = _run(workspace, _WEAK)
  assert not summary.blessed and summary.baseline_version == str(pushed[-1])
  bus_bra = _site(summary, 'bus_bra')
  assert bus_bra.baseline[names.MALIGNANT_SENSITIVITY_METRIC] == 1.0
  site_lines = [line for line in summary.failed_checks if line.startswith("site '")]
  assert site_lines == [
      "site 'bus_bra': malignant_sensitivity = 0.0000, below the required 0.5000 "
      '(10 malignant test scans)',
      "site 'bus_bra': accuracy is -0.6250 against the served model (0.3750 vs 1.0000; "
      'allowed: -0.0000 or better)',
      "site 'bus_bra': malignant_sensitivity is -1.0000 against the served model "
      '(0.0000 vs 1.0000; allowed: -0.0000 or better)']
  assert _site(summary, 'busi').passed
  assert serving_dir.served_versions(workspace['serving']) == pushed


def test_the_site_gate_applies_the_evaluators_floor(workspace):
  # The weak model misses every bus_bra cancer: refused at a floor of 0.5,
  # blessed where the run lowers the floor to 0 (as a run parameter would).
  summary = _run(workspace, _WEAK, output='out_run_floor', run_floor=0.0)
  assert summary.blessed and summary.failed_checks == []
  bus_bra = _site(summary, 'bus_bra')
  assert bus_bra.gated and bus_bra.passed
  assert bus_bra.metrics[names.MALIGNANT_SENSITIVITY_METRIC] == 0.0
