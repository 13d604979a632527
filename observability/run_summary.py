"""What a finished run did, read back from ML Metadata and its artifacts.

The summary covers the newest run of the pipeline: wall time per component
(cached ones marked), the malignant operating point the Trainer chose for the
served decision and its "not sure" cut-off, the Evaluator's metrics (overall
and per site), whether the model was blessed and, if not, which rule failed
(naming the site when the per-site gate refused it), and where the Pusher put
it: only what is on disk now, so a version deleted since its push is reported
as missing; and
whether the data drifted from the served model's (components/drift_check.py), and
where the Trainer's weights started when a warm start was asked for.
"""

import dataclasses
import os
from typing import Dict, List, Optional, Sequence

import tensorflow_model_analysis as tfma
from tfx.dsl.io import fileio
from tfx.utils import path_utils

from blessing import evaluation_metrics
from blessing import site_gate
from components import drift_check
from contracts import metric_values
from contracts import names
from contracts import operating_point as op
from dataset import data_audit
from models import not_sure
from models import operating_point
from models import run_fn
from observability import metadata_run


@dataclasses.dataclass
class ComponentTime:
  component: str
  seconds: float
  cached: bool


@dataclasses.dataclass
class RunSummary:
  run_id: str
  components: List[ComponentTime]
  metrics: Dict[str, float]
  blessed: Optional[bool]
  failed_checks: List[str]
  baseline_version: Optional[str]
  pushed_path: Optional[str]
  # One line on what ImageExampleGen ingested and quarantined (data_audit.md).
  data_audit: Optional[str] = None
  # A version ML Metadata records as pushed that is no longer on disk.
  missing_push: Optional[str] = None
  # The per-site gate's verdicts; None for an evaluation made before it existed.
  sites: Optional[site_gate.SiteGateResult] = None
  # The Trainer's malignant operating point; None when no model was trained.
  operating_point: Optional[op.OperatingPoint] = None
  # DataDriftCheck's headline and drifted features; empty for a run without it.
  drift: List[str] = dataclasses.field(default_factory=list)
  # Sites with their own threshold (operating_point.choose_by_site), by site.
  site_operating_points: Dict[str, op.OperatingPoint] = dataclasses.field(
      default_factory=dict)
  # Where the Trainer's weights started, when a warm start was asked for.
  warm_start: Optional[str] = None
  # The Trainer's "not sure" cut-off (models/not_sure.py); None without one.
  not_sure_cutoff: Optional[float] = None

  def site_lines(self) -> List[str]:
    """The per-site table, or nothing when the examples carry no site."""
    if not self.sites or not self.sites.sites:
      return []
    headers = ['site', *site_gate.SITE_TABLE_METRICS, 'gate']
    rows = [headers] + [list(row) for row in site_gate.table_rows(self.sites)]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(headers))]
    return ['', f'Per site (gated with at least {self.sites.min_site_malignant_examples} '
                'malignant test scans):'] + [
        '  ' + '  '.join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in rows]

  def format(self) -> str:
    lines = [f'Run {self.run_id}', '', 'Component wall time:']
    lines += [f'  {c.component:<22} {c.seconds:8.1f} s{" (cached)" if c.cached else ""}'
              for c in self.components]
    lines.append(f'  {"total":<22} {sum(c.seconds for c in self.components):8.1f} s')
    if self.operating_point:
      lines += ['', f'Operating point: {self.operating_point.summary_line()}']
      lines += [f'  site {site}: {point.summary_line()}'
                for site, point in sorted(self.site_operating_points.items())]
    if self.not_sure_cutoff is not None:
      lines.append(f'Not sure: flagged when 1 - the largest score reaches '
                   f'{self.not_sure_cutoff:.4f} (the least sure '
                   f'{not_sure.FLAG_FRACTION:.0%} of the eval split)')
    if self.warm_start:
      lines += ['', self.warm_start]
    if self.metrics:
      lines += ['', 'Evaluation (held-out test split):']
      lines += [f'  {name:<28} {metric_values.text(value, 0 if _is_count(name) else 4)}'
                for name, value in sorted(self.metrics.items())]
    lines += self.site_lines()
    lines.append('')
    baseline = (f'served version {self.baseline_version}' if self.baseline_version
                else 'none served yet')
    if self.blessed is None:
      lines.append('Blessed: no evaluation ran.')
    elif self.blessed:
      lines.append(f'Blessed: yes (thresholds met; baseline: {baseline}).')
    else:
      lines.append(f'Blessed: no (baseline: {baseline}). Failed checks:')
      lines += [f'  - {check}' for check in self.failed_checks]
    if self.pushed_path:
      lines.append(f'Pushed: {self.pushed_path}')
    elif self.missing_push:
      lines.append(f'Pushed: nothing on disk; {self.missing_push} was pushed but has '
                   'since been deleted. Rerun to push it again.')
    else:
      lines.append('Pushed: nothing.')
    if self.data_audit:
      lines.append(self.data_audit)
    lines += self.drift
    return '\n'.join(lines)


def _is_count(metric: str) -> bool:
  return (metric == names.EXAMPLE_COUNT_METRIC
          or metric.endswith(names.CLASS_EXAMPLES_SUFFIX))


def _describe_failure(failure) -> str:
  name = failure.metric_key.name
  value = failure.metric_value.double_value.value
  if failure.metric_key.is_diff:
    tolerance = failure.metric_threshold.change_threshold.absolute.value
    return (f'{name} is {metric_values.signed_text(value)} against the served model '
            f'(allowed: {tolerance:+.4f} or better)')
  if failure.message:
    return f'{name}: {failure.message}'
  bound = failure.metric_threshold.value_threshold.lower_bound.value
  return f'{name} = {metric_values.text(value)}, below the required {bound:.4f}'


def _failed_checks(evaluation_uri: str) -> List[str]:
  validation = tfma.load_validation_result(evaluation_uri)
  return [_describe_failure(failure)
          for per_slice in validation.metric_validations_per_slice
          for failure in per_slice.failures]


def summarize(metadata_path: str, pipeline_name: str, class_names: Sequence[str],
              run_id: Optional[str] = None) -> RunSummary:
  """Reads run `run_id` (default: the newest) of `pipeline_name` from the SQLite
  store at `metadata_path`."""
  return summarize_run(metadata_run.read(metadata_path, pipeline_name, run_id),
                       class_names)


def summarize_run(run: metadata_run.MetadataRun,
                  class_names: Sequence[str]) -> RunSummary:
  components = [ComponentTime(e.component, e.seconds, e.cached) for e in run.executions]
  metrics, failed, blessed, baseline, pushed, audit = {}, [], None, None, None, None
  missing, sites, point, warm_start = None, None, None, None
  site_points = {}
  for model in run.outputs('Model'):
    point = operating_point.read(path_utils.serving_model_path(model.uri))
    site_points = operating_point.read_sites(path_utils.serving_model_path(model.uri))
    if names.WARM_START_PROPERTY in model.custom_properties:
      warm_start = model.custom_properties[names.WARM_START_PROPERTY].string_value or None
  cutoff = None
  for model_run in run.outputs('ModelRun'):
    cutoff = (run_fn.read_training_summary(model_run.uri) or {}).get('not_sure_cutoff')
  for evaluation in run.outputs('ModelEvaluation'):
    if fileio.glob(os.path.join(evaluation.uri, 'metrics*')):
      metrics = evaluation_metrics.overall_metrics(evaluation.uri, class_names)
      sites = site_gate.read(evaluation.uri)
      failed = _failed_checks(evaluation.uri) + list(sites.failures if sites else ())
  for blessing in run.outputs('ModelBlessing'):
    blessed = blessing.custom_properties['blessed'].int_value == 1
    baseline = blessing.custom_properties[
        names.BASELINE_VERSION_PROPERTY].string_value or None
  for push in run.outputs('PushedModel'):
    if push.custom_properties['pushed'].int_value == 1:
      destination = push.custom_properties['pushed_destination'].string_value
      if fileio.exists(destination):
        pushed = destination
      else:
        missing = destination
  for examples in run.outputs('Examples'):
    if fileio.exists(os.path.join(examples.uri, names.DATA_AUDIT_FILE)):
      audit = (f'{data_audit.summary_line(data_audit.read(examples.uri))} Report: '
               f'{os.path.join(examples.uri, names.DATA_AUDIT_REPORT_FILE)}')
  drift = []
  for anomalies in run.outputs('ExampleAnomalies'):
    result = drift_check.read(anomalies.uri)
    if result:
      drift = result.summary_lines()
  if drift and any(c.cached for c in components if c.component == names.DRIFT_CHECK):
    # TFX reused the check of an earlier run on the same examples: its served
    # version may not be the one served now.
    drift[0] += ' (cached: an earlier run\'s check of these examples)'
  return RunSummary(run.run_id, components, metrics, blessed, failed, baseline, pushed,
                    audit, missing, sites, point, drift, site_points, warm_start, cutoff)
