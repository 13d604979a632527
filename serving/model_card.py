"""The model card every pushed version carries in `assets.extra/`.

An operator looking at a version folder, or at `make serving ARGS=list`, should
not need ML Metadata to know what the model is: which run and data made it, the
malignant operating point its decisions use with the sensitivity and
specificity expected there (with their intervals, from the eval split), how
it scored on the held-out test split (overall and per site) against which
floors, which served model it was compared with, where it should not be
used, and the code and training configuration behind it.
`model_card.json` is for tools (`predict`, the serving CLI), `model_card.md`
for people. TF Serving ignores `assets.extra/` apart from its warm-up file.
"""

import dataclasses
import datetime
import hashlib
import json
import os
from typing import Any, Dict, List, Mapping, Optional

from tfx.dsl.io import fileio

from contracts import configs
from contracts import metric_values
from contracts import names
from contracts import operating_point as op
from contracts import serving
from dataset import data_audit

# What the code fingerprint covers: the library layers, not tests or benches.
_CODE_DIRS = ('components', 'contracts', 'dataset', 'models', 'pipeline', 'schema',
              'serving')
_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class DataSummary:
  fingerprint: str                          # ExampleGen's fingerprint of the data folder
  class_counts: Dict[str, int]              # ingested images per class
  split_counts: Dict[str, Dict[str, int]]   # split -> class -> images
  # The examples artifact it was trained on, whose split ledger keeps the next
  # run's old images in their splits; '' on cards written before it was kept.
  examples_uri: str = ''
  # Dated export (`site/2026-11`) -> images of it the model saw (train, eval
  # and test), for sites read as exports; empty otherwise.
  exports: Dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ModelCard:
  model_name: str
  version: int
  pushed_at: str                  # ISO 8601, UTC
  run_id: str
  data: DataSummary
  test_split: str
  # Overall slice of the test split; None where undefined (e.g. a class the split lacks).
  test_metrics: Dict[str, Optional[float]]
  floors: Dict[str, float]        # metric -> the lower bound it passed
  regression_tolerance: float
  baseline_version: str           # the served version compared with; '' for none
  code_fingerprint: str
  training_config: Dict[str, Any]
  # site -> the main clinical metrics at that site (blessing/site_gate.py);
  # empty when the examples carry no site.
  site_metrics: Dict[str, Dict[str, Optional[float]]] = dataclasses.field(
      default_factory=dict)
  # The Trainer's malignant operating point; None for a model exported without one.
  operating_point: Optional[op.OperatingPoint] = None
  # The served version folder the Trainer's weights started from (a warm
  # start); '' for the family's initial weights.
  started_from: str = ''
  # Sites of the test split with too few malignant scans for the per-site gate:
  # their metrics are shown, not relied on.
  ungated_sites: List[str] = dataclasses.field(default_factory=list)
  # site -> the malignant threshold the site set from its own labelled scans
  # (assets.extra/site_operating_points.json); site_threshold.py keeps it current.
  site_thresholds: Dict[str, float] = dataclasses.field(default_factory=dict)
  # The site whose scans this copy's batch-norm statistics were re-estimated
  # on (serving/site_adaptation.py); '' for the model as trained.
  adapted_to_site: str = ''

  def headline(self) -> Dict[str, float]:
    """The metrics that had floors: what blessed this version."""
    return {name: self.test_metrics[name] for name in self.floors
            if self.test_metrics.get(name) is not None}


def code_fingerprint(project_dir: str = _PROJECT_DIR) -> str:
  """sha256 over the library sources (paths and contents), tests excluded."""
  digest = hashlib.sha256()
  for top in _CODE_DIRS:
    for folder, dirs, files in sorted(os.walk(os.path.join(project_dir, top))):
      dirs.sort()
      for name in sorted(files):
        if name.endswith(('.py', '.pbtxt')) and not name.endswith('_test.py'):
          path = os.path.join(folder, name)
          digest.update(os.path.relpath(path, project_dir).encode() + b'\0')
          with open(path, 'rb') as f:
            digest.update(f.read())
  return digest.hexdigest()


def data_summary(examples_uri: str, fingerprint: str) -> DataSummary:
  """Counts from the data audit ImageExampleGen wrote beside its splits."""
  audit = data_audit.read(examples_uri)
  return DataSummary(fingerprint=fingerprint, examples_uri=examples_uri,
                     class_counts=dict(audit.class_counts),
                     exports=dict(audit.export_counts),
                     split_counts={split: dict(counts)
                                   for split, counts in audit.split_counts.items()})


def now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


def to_json(card: ModelCard) -> str:
  return json.dumps(dataclasses.asdict(card), indent=1, sort_keys=True,
                    allow_nan=False) + '\n'


def from_json(text: str) -> ModelCard:
  fields = json.loads(text)
  point = fields.get('operating_point')
  return ModelCard(**{**fields, 'data': DataSummary(**fields['data']),
                      'operating_point': op.from_dict(point) if point else None})


def to_markdown(card: ModelCard) -> str:
  splits = sorted(card.data.split_counts)
  classes = list(card.data.class_counts)
  lines = [
      f'# {card.model_name}, version {card.version}',
      '',
      f'Pushed {card.pushed_at} by run `{card.run_id or "unknown"}`.',
      f'Compared with served version {card.baseline_version}.' if card.baseline_version
      else 'No model was served: blessed on the floors alone.',
      '',
      *_operating_point_lines(card.operating_point),
      f'## Test split (`{card.test_split}`)',
      '',
      '| metric | value | floor |',
      '|---|---:|---:|',
      *(f'| {name} | {metric_values.text(value)} | '
        f'{card.floors[name]:.2f} |' if name in card.floors else
        f'| {name} | {metric_values.text(value)} | |'
        for name, value in sorted(card.test_metrics.items())),
      '',
      *_site_lines(card),
      f'A candidate may be at most {card.regression_tolerance} worse than the served '
      'model on the metrics with a floor. Where the data has the radiologist\'s BI-RADS, '
      'the run report compares the model with it on the same test scans.',
      '',
      *_not_for_lines(card),
      '## Data',
      '',
      f'Fingerprint: `{card.data.fingerprint}`',
      '',
      *([f'Exports: {", ".join(f"{e} ({n} images)" for e, n in card.data.exports.items())}.',
         ''] if card.data.exports else []),
      '| class | ' + ' | '.join(splits) + ' | all |',
      '|---|' + '---:|' * (len(splits) + 1),
      *(f'| {name} | ' + ' | '.join(str(card.data.split_counts[s].get(name, 0))
                                    for s in splits)
        + f' | {card.data.class_counts[name]} |' for name in classes),
      '',
      '## Code and training',
      '',
      f'Code fingerprint (sha256): `{card.code_fingerprint}`',
      '',
      (f'Warm-started from the weights of served version `{card.started_from}`.'
       if card.started_from else "Trained from the family's initial weights."),
      '',
      *([f'Adapted to site `{card.adapted_to_site}`: its batch-norm statistics were '
         "re-estimated on that site's scans, every weight kept, and it decides at the "
         "threshold the site set on its scans (`assets.extra/site_operating_points.json`); "
         "the figures above are the trained model's.", ''] if card.adapted_to_site else []),
      '```json',
      json.dumps(card.training_config, indent=1, sort_keys=True),
      '```',
      '',
  ]
  return '\n'.join(lines)


def _operating_point_lines(point: Optional[op.OperatingPoint]) -> List[str]:
  """What the served decision does, as expected from the eval split."""
  if point is None:
    return []
  bound = ('none: the eval split held no malignant scan, so every scan is referred'
           if point.sensitivity_lower_bound is None else
           f'{point.sensitivity_lower_bound:.3f} (one-sided {point.confidence:.0%} '
           f'{point.bound_method})'
           + ('' if point.target_bound_met else
              ', below the target: too few malignant eval scans to show it'))
  return ['## Operating point', '',
          f'The served decision is `{op.REFER_DECISION}` when the malignant score is at '
          f'least {point.threshold:.4f}, else the more probable other class. The '
          f'threshold was chosen on the {point.split} split for sensitivity '
          f'{point.target_sensitivity:.2f}.', '',
          f'| on the {point.split} split | value | scans | '
          f'{point.confidence:.0%} interval ({point.bound_method}) |',
          '|---|---:|---:|---|',
          *(f'| {name} | {metric_values.text(rate.estimate)} | '
            f'{rate.successes}/{rate.total} | '
            + ('n/a' if rate.estimate is None else f'{rate.lower:.3f}-{rate.upper:.3f}')
            + ' |'
            for name, rate in (('malignant sensitivity', point.sensitivity),
                               ('malignant specificity', point.specificity))),
          '', f'Lower bound on the sensitivity: {bound}.', '']


def _not_for_lines(card: ModelCard) -> List[str]:
  """Where the evidence behind this version stops: what an operator must not assume."""
  sites = sorted(card.site_metrics)
  tested = (f'the sites of its test split ({", ".join(sites)})'
            if sites and sites != [configs.DEFAULT_SITE]
            else 'the one unnamed site of its test split')
  lines = ['## Where it should not be used', '',
           f'- At a hospital or scanner outside {tested}: its accuracy and its threshold '
           'are unmeasured there, and a model trained at one hospital has lost much of '
           'its AUC at another (docs/results.md). Measure first: `make operating-point` '
           'on that site\'s labelled scans sets and records its own threshold, and with '
           '`--adapt` first adapts a copy of the model to its scanner (docs/serving.md).']
  if card.ungated_sites:
    lines.append(f'- Relying on its figures at {", ".join(sorted(card.ungated_sites))}: '
                 'too few malignant test scans there to gate on.')
  if card.site_thresholds:
    lines.append('- At ' + ', '.join(f'{site} with the served threshold: use its own, '
                                     f'{threshold:.4f}'
                                     for site, threshold in sorted(card.site_thresholds.items()))
                 + ' (`predict --site`).')
  lines += [f'- As a diagnosis: `{op.REFER_DECISION}` means a radiologist or a biopsy '
            'decides, and a scan flagged `not_sure` needs a radiologist\'s read whatever '
            'its decision.',
            '- On images that are not B-mode breast ultrasound: it gives one of its three '
            'classes to any image.', '']
  return lines


def _is_count(metric: str) -> bool:
  """Example counts (overall and per class) are whole numbers."""
  return metric == names.EXAMPLE_COUNT_METRIC or metric.endswith(names.CLASS_EXAMPLES_SUFFIX)


def _site_lines(card: ModelCard) -> List[str]:
  """The per-site table (n/a where a site cannot measure a metric), if any site."""
  if not card.site_metrics:
    return []
  columns = sorted({name for metrics in card.site_metrics.values() for name in metrics})
  return ['## Per site', '',
          '| site | ' + ' | '.join(columns) + ' |',
          '|---|' + '---:|' * len(columns),
          *(f'| {site} | ' + ' | '.join(
              metric_values.text(metrics.get(name), 0 if _is_count(name) else 4)
              for name in columns) + ' |'
            for site, metrics in sorted(card.site_metrics.items())),
          '']


def card_files(card: ModelCard) -> Mapping[str, str]:
  """Relative path in the version folder -> text."""
  return {os.path.join(serving.ASSETS_EXTRA, serving.MODEL_CARD_JSON_FILE): to_json(card),
          os.path.join(serving.ASSETS_EXTRA, serving.MODEL_CARD_MARKDOWN_FILE):
              to_markdown(card)}


def write_card(version_dir: str, card: ModelCard) -> None:
  """Writes the card's files into a version folder that is already pushed or staged."""
  for relpath, text in card_files(card).items():
    path = os.path.join(version_dir, relpath)
    fileio.makedirs(os.path.dirname(path))
    with fileio.open(path, 'w') as f:
      f.write(text)


class DamagedCardError(ValueError):
  """A version's model card cannot be read back; the message names the file."""


def read_card(version_dir: str) -> Optional[ModelCard]:
  """The card of a pushed version, or None for a version pushed without one."""
  path = os.path.join(version_dir, serving.ASSETS_EXTRA, serving.MODEL_CARD_JSON_FILE)
  if not fileio.exists(path):
    return None
  try:
    with fileio.open(path, 'r') as f:
      return from_json(f.read())
  except (ValueError, TypeError, KeyError, AttributeError) as error:
    raise DamagedCardError(f'{path}: not a model card ({error!r})') from None

