"""The two threshold rules for the served decision, side by side on a finished run.

Scores a run's trained model (`serving_default`, the graph TF Serving runs) on
the run's eval and test splits as ImageExampleGen wrote them, chooses the
malignant threshold on the eval split by each rule (models/operating_point.py):

  bound     the highest threshold whose one-sided 95% Clopper-Pearson lower
            bound on the eval sensitivity reaches the target (what ships);
  observed  the highest threshold whose observed eval sensitivity reaches it,

and shows, at each, malignant sensitivity and specificity and the three-way
accuracy at the decision, with 95% Clopper-Pearson intervals, on both splits
and per site. Only the eval split chooses; the test columns are there to see
how each choice held, not to choose between them.

  .venv/bin/python -m bench.operating_point_rules --output-dir outputs

(as a module: bench/serving.py would hide the `serving` package from a script
run out of bench/).
"""

import argparse
import dataclasses
import datetime
import json
import os
import sys
from typing import Dict, List, Sequence

import numpy as np

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)

from blessing import clinical_metrics
from contracts import features
from contracts import names
from contracts import operating_point as op
from models import operating_point
from observability import run_record
from run_report import examples as examples_lib
from tfx.utils import path_utils

RULES = {'bound': True, 'observed': False}
SPLITS = ('eval', 'test')


@dataclasses.dataclass(frozen=True)
class Rates:
  """One rule's outcome on one group of scans."""
  scans: int
  malignant_sensitivity: op.Proportion
  malignant_specificity: op.Proportion
  accuracy_at_decision: op.Proportion   # three-way, refer counted as malignant
  accuracy_top_class: float


@dataclasses.dataclass(frozen=True)
class RuleResult:
  rule: str
  point: op.OperatingPoint
  # split -> group ('all' or a site) -> rates.
  rates: Dict[str, Dict[str, Rates]]


def rates(scores: np.ndarray, labels: np.ndarray, threshold: float,
          malignant: int) -> Rates:
  decided = np.array([clinical_metrics.decided_class(row, malignant, threshold)
                      for row in scores], np.int64)
  sensitivity, specificity = operating_point.rates_at(
      threshold, scores[:, malignant], labels == malignant)
  return Rates(int(labels.size), sensitivity, specificity,
               operating_point.proportion(int((decided == labels).sum()), int(labels.size)),
               float(np.mean(scores.argmax(axis=1) == labels)) if labels.size else float('nan'))


def compare(split_scores: Dict[str, np.ndarray], split_labels: Dict[str, np.ndarray],
            split_sites: Dict[str, np.ndarray], class_names: Sequence[str],
            target: float) -> List[RuleResult]:
  """Each rule's threshold chosen on split 'eval', measured on every split and site."""
  malignant = list(class_names).index(features.MALIGNANT_CLASS)
  results = []
  for rule, with_bound in RULES.items():
    point = operating_point.choose(split_scores['eval'][:, malignant],
                                   split_labels['eval'] == malignant, target, with_bound)
    by_split = {}
    for split, scores in split_scores.items():
      labels, sites = split_labels[split], split_sites[split]
      groups = {'all': np.ones(labels.size, bool)}
      if len(set(sites)) > 1:
        groups.update({site: sites == site for site in sorted(set(sites))})
      by_split[split] = {name: rates(scores[keep], labels[keep], point.threshold, malignant)
                         for name, keep in groups.items()}
    results.append(RuleResult(rule, point, by_split))
  return results


def table(results: Sequence[RuleResult]) -> str:
  lines = [f'{"rule":<9} {"threshold":>9} {"eval bound":>10}  {"split/site":<14} '
           f'{"n":>4}  {"sensitivity (95% CI)":<26} {"specificity (95% CI)":<26} '
           f'{"3-way acc. (95% CI)":<26} {"top-1 acc.":>10}']
  for result in results:
    bound = result.point.sensitivity_lower_bound
    for split, groups in result.rates.items():
      for group, r in groups.items():
        lines.append(
            f'{result.rule:<9} {result.point.threshold:>9.4f} '
            f'{"n/a" if bound is None else f"{bound:.3f}":>10}  {split + "/" + group:<14} '
            f'{r.scans:>4}  {r.malignant_sensitivity.text():<26} '
            f'{r.malignant_specificity.text():<26} {r.accuracy_at_decision.text():<26} '
            f'{r.accuracy_top_class:>10.3f}')
  return '\n'.join(lines)


def main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output-dir', required=True,
                      help='the pipeline output folder (with metadata.sqlite) of the run')
  parser.add_argument('--run-id', default=None, help='default: the newest run')
  parser.add_argument('--target-sensitivity', type=float, default=0.90)
  parser.add_argument('--json', default='', help='also write the figures to this file')
  args = parser.parse_args(argv)
  metadata_path = os.path.join(args.output_dir, 'metadata.sqlite')
  if not os.path.isfile(metadata_path):
    parser.error(f'{metadata_path} does not exist: no pipeline ran into {args.output_dir}')
  record = run_record.load(metadata_path, names.PIPELINE_NAME, features.CLASS_NAMES,
                           args.run_id)
  examples_uri = record.uri(names.EXAMPLE_GEN, 'Examples')
  model_uri = record.uri(names.TRAINER, 'Model')
  if not examples_uri or not model_uri:
    parser.error(f'run {record.summary.run_id} has no examples or no trained model')
  model_dir = path_utils.serving_model_dir(model_uri)
  class_names = list(features.CLASS_NAMES)
  scores, labels, sites = {}, {}, {}
  for split in SPLITS:
    split_examples = examples_lib.read_split(examples_uri, split, class_names,
                                             keep_payload=True)
    if split_examples is None:
      parser.error(f'run {record.summary.run_id} has no {split} split')
    known = split_examples.labels >= 0
    scores[split] = examples_lib.predict(model_dir, split_examples.serialized)[known]
    labels[split] = split_examples.labels[known]
    sites[split] = split_examples.sites[known]
  results = compare(scores, labels, sites, class_names, args.target_sensitivity)
  print(f'Run {record.summary.run_id}, model {model_dir}, target sensitivity '
        f'{args.target_sensitivity}, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC')
  print(table(results))
  if args.json:
    with open(args.json, 'w') as f:
      json.dump({'run_id': record.summary.run_id, 'model_dir': model_dir,
                 'target_sensitivity': args.target_sensitivity,
                 'results': [dataclasses.asdict(r) for r in results]}, f, indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
