"""Builds a run's HTML report from ML Metadata and the run's artifacts.

Each section reads only artifacts the run recorded, so a report rebuilt
months later (`report.py --run-id`) shows that run, not the current code's
idea of it; the one exception, the git commit, is labelled as the commit the
report was built at.
"""

import dataclasses
import io
import json
import os
import platform
import re
import subprocess
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
import tensorflow_transform as tft
import tfx
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.utils import path_utils

from blessing import clinical_metrics
from blessing import evaluation_metrics
from blessing import radiologist_comparison
from blessing import rules as rules_lib
from blessing import site_gate
from components import drift_check
from contracts import configs
from contracts import features
from contracts import names
from contracts import operating_point as op
from dataset import data_audit
from models import grad_cam
from models import model as model_lib
from models import operating_point
from models import run_fn
from observability import run_record
from observability import run_summary
from run_report import curves
from run_report import drift as drift_parts
from run_report import examples as examples_lib
from run_report import explanations as explanations_lib
from run_report import html
from run_report import plots

REPORTS_DIR = 'reports'
SECTIONS = ('summary', 'data', 'drift', 'training', 'evaluation', 'operating_point',
            'explanations')
# The name TFX's Evaluator gives the baseline in a model comparison.
_TFMA_BASELINE_MODEL = 'baseline'
_AUDIT_ROWS_SHOWN = 25
_THUMBNAIL_PX = 72
# What TFDV lists as the top "value" of a binary feature such as the image.
_TFDV_BYTES_PLACEHOLDER = '__BYTES_VALUE__'
_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass
class _Context:
  """What several sections share, loaded once."""
  record: run_record.RunRecord
  class_names: Sequence[str]
  splits: Dict[str, examples_lib.SplitExamples]
  custom_config: Dict[str, Any]
  test_split: str
  # The Trainer's serving model directory; None when no model was trained.
  candidate: Optional[str]


def report_path(output_dir: str, run_id: str) -> str:
  return os.path.join(output_dir, REPORTS_DIR, re.sub(r'[^\w.-]', '-', run_id) + '.html')


def build_report(output_dir: str, run_id: Optional[str] = None,
                 pipeline_name: str = names.PIPELINE_NAME) -> str:
  """Writes the report of run `run_id` (default: the newest); returns its path.

  Raises ValueError when `output_dir` holds no ML Metadata or no such run.
  """
  metadata_path = os.path.join(output_dir, 'metadata.sqlite')
  if not os.path.isfile(metadata_path):
    raise ValueError(f'{metadata_path} does not exist: no pipeline has run with '
                     f'--output-dir {output_dir}.')
  record = run_record.load(metadata_path, pipeline_name, features.CLASS_NAMES, run_id)
  context = _context(record)
  page = html.Page(f'BUSI pipeline run {record.summary.run_id}')
  page.section('summary', 'Run summary', _summary_section(context))
  page.section('data', 'Data', _data_section(context))
  page.section('drift', "Drift from the served model's data", _drift_section(context))
  page.section('training', 'Training', _training_section(context))
  evaluation_parts, probabilities = _evaluation_section(context)
  page.section('evaluation', f'Evaluation on the {context.test_split} split',
               evaluation_parts)
  page.section('operating_point', 'Operating point: the decision a clinic receives',
               _operating_point_section(context, probabilities))
  page.section('explanations', 'Where the model looks (Grad-CAM)',
               _explanations_section(context, probabilities))
  path = report_path(output_dir, record.summary.run_id)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(page.render())
  return path


def _context(record: run_record.RunRecord) -> _Context:
  trainer = record.properties.get(names.TRAINER, {})
  custom_config = json.loads(trainer.get('custom_config') or '{}')
  if 'training' in custom_config and trainer.get('epochs'):
    # The Trainer's own parameter, not part of the compiled custom_config.
    custom_config['training']['epochs'] = int(trainer['epochs'])
  class_names = custom_config.get('class_names') or list(features.CLASS_NAMES)
  examples_uri = record.uri(names.EXAMPLE_GEN, 'Examples')
  splits = {}
  evaluator = record.properties.get(names.EVALUATOR, {})
  test_split = (json.loads(evaluator['example_splits'])[0]
                if evaluator.get('example_splits') else configs.EvaluationConfig().eval_split)
  if examples_uri:
    read = {split: examples_lib.read_split(examples_uri, split, class_names,
                                           keep_payload=split == test_split)
            for split in configs.SplitConfig().as_dict()}
    splits = {split: examples for split, examples in read.items() if examples is not None}
  model_uri = record.uri(names.TRAINER, 'Model')
  candidate = path_utils.serving_model_dir(model_uri) if model_uri else None
  return _Context(record, class_names, splits, custom_config, test_split, candidate)


# --- Run summary -------------------------------------------------------------


def _git_commit() -> str:
  try:
    commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=_PROJECT_DIR,
                            capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                           cwd=_PROJECT_DIR, capture_output=True, text=True).stdout
  except (OSError, subprocess.CalledProcessError):
    return 'unknown (not a git checkout)'
  return commit + (' with uncommitted changes' if dirty.strip() else '')


def _rules(evaluator_properties: Mapping[str, str]) -> Optional[rules_lib.BlessingRules]:
  """The blessing rules the Evaluator ran with (its own execution parameters)."""
  fields = dataclasses.fields(rules_lib.BlessingRules)
  if not all(field.name in evaluator_properties for field in fields):
    return None
  return rules_lib.BlessingRules(**{field.name: field.type(evaluator_properties[field.name])
                                    for field in fields})


def _site_parts(summary: run_summary.RunSummary) -> List[str]:
  """The main clinical metrics per site, with the per-site gate's verdict."""
  sites = summary.sites
  if not sites or not sites.sites:
    return []
  rows = []
  for site, cells in zip(sites.sites, site_gate.table_rows(sites)):
    values = [int(site.metrics[name]) if name in site_gate.COUNT_METRICS
              and site.metrics[name] is not None else site.metrics.get(name)
              for name in site_gate.SITE_TABLE_METRICS]
    verdict = html.badge(site.passed) if site.gated else cells[-1]
    rows.append([site.site, *values, verdict])
  return ['<h3>Per site</h3>', html.table(
      ['Site', *(name.replace('_', ' ') for name in site_gate.SITE_TABLE_METRICS),
       'Per-site gate'], rows,
      caption=f'Sites with at least {sites.min_site_malignant_examples} malignant test '
              f'scans must reach malignant sensitivity {sites.min_malignant_recall:.2f} '
              f'and fall at most {sites.regression_tolerance} below the served model; '
              'n/a: undefined at that site (e.g. a class it lacks).')]


def _summary_section(context: _Context) -> List[str]:
  record, summary = context.record, context.record.summary
  example_gen = record.properties.get(names.EXAMPLE_GEN, {})
  ingested = sum(len(s) for s in context.splits.values())
  facts = [
      ('Run', summary.run_id),
      ('Dataset', f'{example_gen.get("input_base", "unknown")} '
                  f'({ingested} images ingested)'),
      ('Model code fingerprint (sha256)', context.custom_config.get('models_code_sha256', '')),
      ('Git commit when this report was built', _git_commit()),
      ('Versions', f'Python {platform.python_version()}, TFX {tfx.__version__}, '
                   f'TensorFlow {tf.__version__}, TFT {tft.__version__}, '
                   f'TFDV {tfdv.__version__}, TFMA {tfma.__version__}'),
      ('Pushed', summary.pushed_path or 'nothing'),
  ]
  parts = [html.table(['Run', 'Value'], facts), html.table(
      ['Model and training', 'Value'],
      [*_setting_rows('model', context.custom_config.get('model', {})),
       *_setting_rows('training', context.custom_config.get('training', {}))])]
  if summary.blessed is None:
    parts.append(html.paragraph('No evaluation ran, so nothing was blessed or pushed.'))
  else:
    baseline = (f'served version {summary.baseline_version}' if summary.baseline_version
                else 'none: nothing was served yet, so only the floors apply')
    parts.append(f'<p>Blessed: {html.badge(summary.blessed, "yes", "no")}. '
                 f'Baseline: {html.text(baseline)}.</p>')
    rules = _rules(record.properties.get(names.EVALUATOR, {}))
    rows = [(metric, summary.metrics.get(metric, float('nan')), floor,
             rules.regression_tolerance,
             html.badge(not any(re.match(rf'{re.escape(metric)}\b', check)
                                for check in summary.failed_checks)))
            for metric, floor in (rules.floors.items() if rules else ())]
    parts.append(html.table(
        ['Metric', 'Candidate', 'Floor', 'Largest drop allowed vs baseline', 'Check'],
        rows))
    if summary.failed_checks:
      parts.append(html.preformatted('\n'.join(summary.failed_checks)))
    parts += _site_parts(summary)
  parts.append(html.table(
      ['Component', 'Wall time (s)', 'Cached'],
      [(c.component, f'{c.seconds:.1f}', 'yes' if c.cached else '')
       for c in summary.components] +
      [('total', f'{sum(c.seconds for c in summary.components):.1f}', '')]))
  configuration = ''.join(
      f'<h4>{html.text(component)}</h4>' + html.table(
          ['Property', 'Value'],
          [row for name, value in sorted(properties.items())
           for row in _setting_rows(name, _parsed(value))])
      for component, properties in record.properties.items() if properties)
  parts.append(f'<details><summary>Configuration each component ran with</summary>'
               f'{configuration}</details>')
  return parts


def _parsed(value: Any) -> Any:
  """A component property as the value it encodes: TFX stores dicts as JSON text."""
  if isinstance(value, str) and value[:1] in '{[':
    try:
      return json.loads(value)
    except ValueError:
      return value
  return value


def _setting_rows(name: str, value: Any) -> Iterator[Tuple[str, Any]]:
  """One (dotted name, value) row per leaf of a nested configuration."""
  if isinstance(value, dict) and value:
    for key in sorted(value):
      yield from _setting_rows(f'{name}.{key}', value[key])
  elif isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
    yield name, ', '.join(str(v) for v in value)
  elif isinstance(value, (dict, list)):
    yield name, json.dumps(value, sort_keys=True)
  else:
    yield name, value


# --- Drift ---------------------------------------------------------------------


def _drift_section(context: _Context) -> List[str]:
  uri = context.record.uri(names.DRIFT_CHECK, 'ExampleAnomalies')
  result = drift_check.read(uri) if uri else None
  if result is None:
    return [html.paragraph('This run has no drift check.', note=True)]
  return drift_parts.section_parts(result)


# --- Data ----------------------------------------------------------------------


def _audit_parts(audit: data_audit.DataAudit) -> List[str]:
  """The audit as tables: counts, policy, and each list of files that needs a look."""
  policy = audit.policy
  classes, splits = list(policy.class_names), list(policy.split_names)
  parts = [html.table(
      ['Files', 'Count'],
      [('ingested', audit.ingested), ('quarantined', len(audit.quarantined)),
       ('ignored', len(audit.ignored)),
       ('quarantined share', f'{audit.quarantined_fraction:.1%} '
                             f'(the run stops above {policy.max_quarantined_fraction:.0%})')],
      caption=f'Data root: {audit.data_root}'),
           html.table(
      ['Class', *splits, 'total', 'independent images'],
      [(name, *(audit.split_counts.get(split, {}).get(name, 0) for split in splits),
        audit.class_counts.get(name, 0), audit.independent_images_per_class.get(name, 0))
       for name in classes],
      caption='Ingested images per class and split; independent images count each '
              'near-duplicate group once.'),
           html.table(
      ['Policy', 'Value'],
      [('label conflicts', policy.label_conflicts),
       ('stop on any quarantined file', 'yes' if policy.strict else 'no'),
       ('near-duplicate distance', f'{audit.near_duplicate_max_bits} bits of the 64-bit hash')])]
  if len(audit.site_counts) > 1:
    parts += _site_counts_parts(audit.site_counts, classes, splits)
  if audit.export_counts:
    parts += ['<h4>Dated exports read</h4>', html.table(
        ['Export', 'Images ingested'], list(audit.export_counts.items()),
        caption='An image a later export sent again is counted in the earliest.')]
  parts += _file_list(
      'Quarantined files', audit.quarantined, ['Preview', 'File', 'Reason'],
      lambda q: (_thumbnail(audit.data_root, q.file), q.file, q.reason))
  parts += _file_list(
      'Label conflicts', audit.label_conflicts, ['Preview', 'Files (label)', 'Splits'],
      lambda g: (_thumbnails(audit.data_root, [m.file for m in g.files]),
                 g.members_text(), ', '.join(g.splits) or 'none: dropped'))
  parts += _file_list(
      'Patients under two labels', audit.patient_conflicts, ['Site', 'Patient', 'Files (label)'],
      lambda c: (c.site, c.patient_id, ', '.join(f'{m.file} ({m.label})' for m in c.files)))
  parts += _file_list(
      'Near-duplicate groups', audit.near_duplicate_groups,
      ['Group', 'Copies', 'Files (label)', 'Split'],
      lambda g: (g.group_id, 'exact' if g.exact else 'near', g.members_text(),
                 ', '.join(g.splits)))
  parts += _file_list('Notes', audit.notes, ['File', 'Note'], lambda n: (n.file, n.note))
  parts += _file_list('Ignored files', audit.ignored, ['File', 'Reason'],
                      lambda i: (i.file, i.reason))
  return parts


def _file_list(title: str, entries: Sequence[Any], headers: Sequence[str],
               row: Callable[[Any], Sequence[Any]]) -> List[str]:
  """A titled table of the first entries; nothing at all for an empty list."""
  if not entries:
    return []
  shown = entries[:_AUDIT_ROWS_SHOWN]
  parts = [f'<h4>{html.text(title)} ({len(entries)})</h4>',
           html.table(headers, [row(entry) for entry in shown])]
  if len(entries) > len(shown):
    parts.append(html.paragraph(f'... and {len(entries) - len(shown)} more in '
                                f'{names.DATA_AUDIT_FILE}.', note=True))
  return parts


def _thumbnail(data_root: str, relpath: str) -> Any:
  """A small grey preview of an audited file, or a dash where it is no readable image."""
  try:
    with tf.io.gfile.GFile(os.path.join(data_root, relpath), 'rb') as f:
      image = Image.open(io.BytesIO(f.read()))
      image.thumbnail((_THUMBNAIL_PX, _THUMBNAIL_PX))
      png = io.BytesIO()
      image.convert('L').save(png, format='PNG')
  except (OSError, ValueError, tf.errors.OpError, Image.DecompressionBombError):
    return '-'
  return html.thumbnail(png.getvalue(), relpath)


def _thumbnails(data_root: str, relpaths: Sequence[str]) -> html.Raw:
  return html.Raw(''.join(str(_thumbnail(data_root, relpath)) for relpath in relpaths))


def _site_counts_parts(site_counts: Mapping[str, data_audit.SiteCounts],
                       classes: Sequence[str], splits: Sequence[str]) -> List[str]:
  """One row per site and split, one column per class: what was ingested where."""
  rows = []
  for site, counts in site_counts.items():
    for split in splits:
      by_class = counts.split_counts.get(split, {})
      rows.append([site, split, *(by_class.get(c, 0) for c in classes),
                   sum(by_class.values())])
    rows.append([site, 'all', *(counts.class_counts.get(c, 0) for c in classes),
                 counts.ingested])
  return ['<h4>Images per site</h4>', html.table(
      ['Site', 'Split', *classes, 'total'], rows,
      caption='; '.join(f'{site}: {counts.quarantined} quarantined, {counts.ignored} ignored'
                        for site, counts in site_counts.items()))]


def _statistics_parts(statistics_uri: str) -> List[str]:
  """TFDV's statistics as tables: TFDV's own HTML needs Facets from the network."""
  parts = []
  for path in sorted(tf.io.gfile.glob(os.path.join(statistics_uri, 'Split-*',
                                                   'FeatureStats.pb'))):
    split = os.path.basename(os.path.dirname(path))[len('Split-'):]
    dataset = tfdv.load_stats_binary(path).datasets[0]
    rows = []
    for feature in dataset.features:
      name = '.'.join(feature.path.step) or feature.name
      if feature.HasField('num_stats'):
        s = feature.num_stats
        rows.append((name, 'numeric', s.common_stats.num_non_missing,
                     s.common_stats.num_missing,
                     f'mean {s.mean:.1f}, sd {s.std_dev:.1f}, min {s.min:.0f}, '
                     f'median {s.median:.0f}, max {s.max:.0f}, zeros {s.num_zeros}'))
      elif feature.HasField('string_stats'):
        s = feature.string_stats
        top = ', '.join(f'{v.value[:20]} ({v.frequency:.0f})' for v in s.top_values[:3]
                        if v.value != _TFDV_BYTES_PLACEHOLDER) or 'binary values'
        rows.append((name, 'string/bytes', s.common_stats.num_non_missing,
                     s.common_stats.num_missing,
                     f'{s.unique} unique; top: {top}'))
      elif feature.HasField('bytes_stats'):
        s = feature.bytes_stats
        rows.append((name, 'bytes', s.common_stats.num_non_missing,
                     s.common_stats.num_missing,
                     f'{s.unique} unique; {s.avg_num_bytes:.0f} bytes on average'))
    parts.append(html.table(['Feature', 'Type', 'Present', 'Missing', 'Distribution'],
                            rows, caption=f'{split}: {dataset.num_examples} examples'))
  return parts


def _anomalies_parts(anomalies_uri: str) -> List[str]:
  rows = []
  for path in sorted(tf.io.gfile.glob(os.path.join(anomalies_uri, 'Split-*', '*.pb'))):
    split = os.path.basename(os.path.dirname(path))[len('Split-'):]
    anomalies = anomalies_pb2.Anomalies.FromString(tf.io.gfile.GFile(path, 'rb').read())
    for feature, info in sorted(anomalies.anomaly_info.items()):
      rows.append((split, feature, info.short_description, info.description))
    if anomalies.HasField('dataset_anomaly_info'):
      info = anomalies.dataset_anomaly_info
      rows.append((split, '(dataset)', info.short_description, info.description))
  if not rows:
    return [html.paragraph('TFDV found no anomalies against the schema in any split.')]
  return [html.table(['Split', 'Feature', 'Anomaly', 'Detail'], rows)]


def _data_section(context: _Context) -> List[str]:
  record, splits = context.record, context.splits
  if not splits:
    return [html.paragraph('ImageExampleGen produced no examples in this run.')]
  counts = {split: {name: int(np.sum(examples.labels == k))
                    for k, name in enumerate(context.class_names)}
            for split, examples in splits.items()}
  parts = [
      html.table(['Split', *context.class_names, 'total'],
                 [(split, *c.values(), sum(c.values())) for split, c in counts.items()]),
      html.figure(plots.class_counts(counts, context.class_names),
                  'Images per class in each split (near-duplicate groups never '
                  'straddle two splits).'),
      html.figure(plots.distributions({
          split: {'width (px)': e.widths.astype(float),
                  'height (px)': e.heights.astype(float),
                  'mean grey level (0-255)': e.mean_intensities}
          for split, e in splits.items()}),
                  'Image size and intensity distributions per split; similar '
                  'shapes mean the splits come from the same population.'),
  ]
  examples_uri = record.uri(names.EXAMPLE_GEN, 'Examples')
  parts.append('<h3>Data audit</h3>')
  if tf.io.gfile.exists(os.path.join(examples_uri, names.DATA_AUDIT_FILE)):
    parts += _audit_parts(data_audit.read(examples_uri))
  else:
    parts.append(html.paragraph('This run wrote no data audit.'))
  statistics_uri = record.uri(names.STATISTICS_GEN, 'ExampleStatistics')
  if statistics_uri:
    parts.append('<h3>TFDV statistics</h3>')
    parts += _statistics_parts(statistics_uri)
  anomalies_uri = record.uri('ExampleValidator', 'ExampleAnomalies')
  if anomalies_uri:
    parts.append('<h3>TFDV anomalies</h3>')
    parts += _anomalies_parts(anomalies_uri)
  return parts


# --- Training ------------------------------------------------------------------


def _training_section(context: _Context) -> List[str]:
  model_run = context.record.uri(names.TRAINER, 'ModelRun')
  summary = run_fn.read_training_summary(model_run) if model_run else None
  if summary is None:
    return [html.paragraph('The Trainer did not run, or wrote no training summary.')]
  facts = [(k, summary[k]) for k in ('model', 'parameters', 'epochs_run') if k in summary]
  if 'temperature' in summary:
    facts.append(('temperature (fitted on eval)', f'{summary["temperature"]:.2f}'))
  parts = [html.table(['Training', 'Value'], facts)]
  if 'history' in summary:
    history = summary['history']
    class_accuracy = f'{model_lib.CLASS_OUTPUT}_accuracy'
    accuracy_key = class_accuracy if class_accuracy in history else 'accuracy'
    parts.append(html.figure(
        plots.training_curves(history, 'loss', accuracy_key),
        'Training loss (all outputs, weighted) and classification accuracy per '
        'epoch; "eval" is the eval split, which early stopping watches. Best '
        f'epoch (weights kept): {summary["best_epoch"] + 1}.'))
  return parts


# --- Evaluation ----------------------------------------------------------------


def _metrics_against_baseline(context: _Context) -> List[str]:
  """The Evaluator's own numbers for both models: what the blessing compared."""
  summary = context.record.summary
  if not summary.metrics:
    return []
  baseline = {}
  if summary.baseline_version:
    baseline = evaluation_metrics.overall_metrics(
        context.record.uri(names.EVALUATOR, 'ModelEvaluation'), context.class_names,
        model_name=_TFMA_BASELINE_MODEL)
  headers = ['Metric (TFMA)', 'Candidate']
  if baseline:
    headers += [f'Baseline (served version {summary.baseline_version})', 'Change']
  rows = []
  # TFMA also files each candidate-minus-baseline difference as a metric.
  for name, value in sorted((n, v) for n, v in summary.metrics.items() if '_diff' not in n):
    row = [name, value]
    if baseline:
      row += [baseline.get(name, float('nan')), value - baseline.get(name, float('nan'))]
    rows.append(row)
  parts = [html.table(headers, rows)]
  if not baseline:
    parts.append(html.paragraph('No model was served when this run evaluated, so '
                                'there is no baseline to compare with.', note=True))
  return parts


def _evaluation_section(context: _Context):
  test = context.splits.get(context.test_split)
  if context.candidate is None or test is None or not len(test):
    return [html.paragraph('No trained model or no test examples in this run.')], None
  names = context.class_names
  known = test.labels >= 0
  probabilities = examples_lib.predict(context.candidate, test.serialized)
  labels, scores = test.labels[known], probabilities[known]
  malignant = list(names).index(features.MALIGNANT_CLASS)
  point = operating_point.read(context.candidate)
  counts = curves.confusion_matrix(
      labels, _decisions(scores, malignant, point.threshold if point else None), len(names))
  decision = (f'decision at the malignant operating point ({point.threshold:.4f}; '
              f'"malignant" = {op.REFER_DECISION})' if point else 'decision = top class')
  parts = [
      html.figure(plots.confusion_matrix(counts, names),
                  f'Confusion matrix, {len(labels)} test images, {decision}.'),
      html.figure(plots.roc_curves({n: curves.roc(scores[:, k], labels == k)
                                    for k, n in enumerate(names)}),
                  'ROC per class, one against the rest.'),
      html.figure(plots.precision_recall(
          curves.precision_recall(scores[:, malignant], labels == malignant),
          features.MALIGNANT_CLASS, float(np.mean(labels == malignant))),
                  'Precision against recall for malignant, over p(malignant).'),
      html.figure(plots.reliability(curves.reliability(scores, labels)),
                  'Reliability: accuracy against stated confidence, per confidence '
                  'bin (numbers: images per bin).'),
  ]
  parts += _radiologist_parts(test.birads[known], labels, scores, names)
  parts += _metrics_against_baseline(context)
  return parts, probabilities


# --- Operating point -----------------------------------------------------------


def _decisions(scores: np.ndarray, malignant: int, threshold: Optional[float]) -> np.ndarray:
  """The served decision of each row, as a class index."""
  return np.array([clinical_metrics.decided_class(row, malignant, threshold)
                   for row in scores], np.int64)


def _measured_row(name: str, scores: np.ndarray, labels: np.ndarray, threshold: float,
                  malignant: int) -> Tuple[str, int, str, str, str]:
  """(name, scans, sensitivity, specificity, three-way accuracy) at `threshold`."""
  sensitivity, specificity = operating_point.rates_at(
      threshold, scores[:, malignant], labels == malignant)
  right = int((_decisions(scores, malignant, threshold) == labels).sum())
  return (name, int(labels.size), sensitivity.text(), specificity.text(),
          operating_point.proportion(right, int(labels.size)).text())


def _operating_point_section(context: _Context,
                             probabilities: Optional[np.ndarray]) -> List[str]:
  """The threshold, what the eval split promised and what the test split saw, per site."""
  point = None if probabilities is None else operating_point.read(context.candidate)
  if point is None:
    return [html.paragraph('This model was exported without an operating point: its '
                           'decision is the top class.')]
  test = context.splits[context.test_split]
  known = test.labels >= 0
  labels, scores, sites = test.labels[known], probabilities[known], test.sites[known]
  malignant = list(context.class_names).index(features.MALIGNANT_CLASS)
  groups = {f'{context.test_split} split': np.ones(labels.size, bool)}
  if len(set(sites)) > 1:
    groups.update({f'{context.test_split}, site {site}': sites == site
                   for site in sorted(set(sites))})
  rows = [(f'{point.split} split (chose the threshold)', point.sensitivity.total +
           point.specificity.total, point.sensitivity.text(),
           point.specificity.text(), 'n/a')]
  rows += [_measured_row(name, scores[keep], labels[keep], point.threshold, malignant)
           for name, keep in groups.items()]
  for site, own in sorted(operating_point.read_sites(context.candidate).items()):
    keep = sites == site
    rows.append((f'site {site}: its own threshold {own.threshold:.4f}, on its '
                 f'{own.split} scans', own.sensitivity.total + own.specificity.total,
                 own.sensitivity.text(), own.specificity.text(), 'n/a'))
    if keep.any():
      rows.append(_measured_row(f'site {site}: its own threshold, {context.test_split} '
                                'split', scores[keep], labels[keep], own.threshold,
                                malignant))
  bound = ('none (no malignant eval scan: every scan is referred)'
           if point.sensitivity_lower_bound is None else
           f'{point.sensitivity_lower_bound:.3f} (one-sided {point.confidence:.0%} '
           f'{point.bound_method})' + ('' if point.target_bound_met else
                                      ', below the target: too few malignant eval scans'))
  fewest = operating_point.fewest_malignant_to_show(point.target_sensitivity)
  test_sensitivity, test_specificity = operating_point.rates_at(
      point.threshold, scores[:, malignant], labels == malignant)
  parts = [
      f'<p>A scan is <strong>{op.REFER_DECISION}</strong> when its calibrated malignant '
      f'score is at least <strong>{point.threshold:.4f}</strong>, chosen on the '
      f'{html.text(point.split)} split for sensitivity {point.target_sensitivity:.2f}; '
      f'lower bound on its sensitivity there: {html.text(bound)}. '
      + (f'The bound can reach {point.target_sensitivity:.2f} only from {fewest} malignant '
         'eval scans, all referred; a site needs as many of its own to set its own '
         'threshold with that promise (docs/serving.md).</p>' if fewest else '</p>'),
      html.table(['Scans', 'n', 'Malignant sensitivity (95% CI)',
                  'Malignant specificity (95% CI)', 'Three-way accuracy at the decision'],
                 rows, caption='Intervals: two-sided 95% Clopper-Pearson. The test rows '
                               'measure the threshold the eval split chose; nothing was '
                               'chosen on them.')]
  if test_sensitivity.estimate is not None and test_specificity.estimate is not None:
    points = {}
    if point.sensitivity.estimate is not None and point.specificity.estimate is not None:
      points[f'{point.split} (chose it)'] = (1 - point.specificity.estimate,
                                             point.sensitivity.estimate)
    points[context.test_split] = (1 - test_specificity.estimate, test_sensitivity.estimate)
    parts.append(html.figure(
        plots.roc_with_points(curves.roc(scores[:, malignant], labels == malignant),
                              features.MALIGNANT_CLASS, points),
        f'Malignant against the rest on the {context.test_split} split, with the '
        'operating point where the eval split put it and where it fell on this split.'))
  return parts


def _radiologist_parts(birads: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                       names: Sequence[str]) -> List[str]:
  """The model against the radiologist's BI-RADS on the test scans that have it."""
  m, b = list(names).index(features.MALIGNANT_CLASS), list(names).index('benign')
  lesion = (labels == m) | (labels == b)
  pair_scores = scores[lesion, m] / np.maximum(scores[lesion, m] + scores[lesion, b], 1e-12)
  comparison = radiologist_comparison.compare(labels[lesion] == m, pair_scores,
                                              birads[lesion])
  if comparison is None:
    return []
  read = ~np.isnan(birads[lesion])
  curve = curves.roc(pair_scores[read], labels[lesion][read] == m)
  points = {p.name: (1 - p.specificity.estimate, p.sensitivity.estimate)
            for p in comparison.birads_points}
  at_biopsy = comparison.model_sensitivity_at_biopsy_specificity
  rows = [[p.name, p.sensitivity.text(), p.specificity.text()]
          for p in comparison.birads_points]
  rows.append(['model, at BI-RADS >= 4\'s specificity', at_biopsy.text(),
               comparison.model_specificity_at_biopsy_specificity.text()])
  return [
      html.figure(plots.roc_with_points(curve, 'malignant vs benign', points),
                  f'The model against the radiologist on the same {comparison.scans} benign '
                  f'and malignant test scans with a BI-RADS reading ({comparison.malignant} '
                  f'malignant): the model\'s ROC over p(malignant | benign or malignant), '
                  f'BI-RADS AUC {comparison.birads_auc:.3f}.'),
      html.table(['decision', 'sensitivity', 'specificity'], rows,
                 'Referring at BI-RADS 3 or more (follow-up), 4 or more (biopsy), 5; and the '
                 'model referring no more benign scans than BI-RADS >= 4 does.'),
  ]


# --- Explanations --------------------------------------------------------------


def _explanations_section(context: _Context,
                          probabilities: Optional[np.ndarray]) -> List[str]:
  if probabilities is None or 'model' not in context.custom_config:
    return [html.paragraph('No trained model to explain in this run.')]
  model_config = configs.model_config_from(context.custom_config)
  try:
    model = grad_cam.load_serving_model(context.candidate, model_config,
                                        len(context.class_names))
  except ValueError as e:
    return [html.paragraph(f'Grad-CAM needs the network rebuilt from models/model.py: {e}')]
  result = explanations_lib.explain(
      model, context.splits[context.test_split], probabilities,
      model_config.image_size, context.class_names,
      layer=grad_cam.explained_layer(model, model_config.name))
  score = (f'{result.pointing_score:.2f} ({result.pointing_hits} of '
           f'{result.pointing_total} test images with a lesion mask)'
           if result.pointing_total else 'n/a (no test image has a lesion mask)')
  parts = [f'<p>Pointing game: <strong>{html.text(score)}</strong>. A hit is a '
           'heatmap for the true class whose peak lies inside the ground-truth '
           'lesion mask.</p>']
  if result.gallery:
    parts.append(html.figure(
        plots.grad_cam_gallery(result.gallery, context.class_names),
        'Grad-CAM of the predicted class on up to two correct and two wrong test '
        'images per true class (title: true -> predicted (confidence)). Green: '
        'lesion mask; +: heatmap peak.'))
  return parts
