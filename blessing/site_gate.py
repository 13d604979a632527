"""The per-site gate: no site may be left behind by a model that passes overall.

A model can meet the floors on the pooled test split while missing cancers at
one hospital whose scanners it never learned (BUS-BRA beside BUSI). TFMA
slices the evaluation by `site`, but its thresholds cannot say "only where the
site has enough malignant scans to measure": a site with three malignant scans
moves its sensitivity by a third per scan. So after TFMA this gate reads each
site's slice of the candidate and of the served baseline and requires, at
every site with at least `min_site_malignant_examples` malignant test scans:

- malignant sensitivity at or above the overall floor;
- accuracy and malignant sensitivity no more than `regression_tolerance` below
  the served model's at that site (the rule TFMA applies overall).

Smaller sites are reported, not gated. Examples without a `site` feature make
no site slices, and the gate then changes nothing. Its verdicts go to
`site_gate.json` beside TFMA's output; the Evaluator withholds the blessing
when a site fails (components/served_baseline_evaluator.py). The rules are the
run's (blessing/rules.py).
"""

import dataclasses
import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from tfx.dsl.io import fileio

from blessing import rules as rules_lib
from contracts import features
from contracts import metric_values
from contracts import names

MALIGNANT_EXAMPLES = f'{features.MALIGNANT_CLASS}{names.CLASS_EXAMPLES_SUFFIX}'
# The clinical metrics shown per site, in the order of the tables.
SITE_TABLE_METRICS: Tuple[str, ...] = (
    names.EXAMPLE_COUNT_METRIC, MALIGNANT_EXAMPLES, names.ACCURACY_METRIC,
    names.DECISION_ACCURACY_METRIC, names.MALIGNANT_SENSITIVITY_METRIC,
    names.MALIGNANT_SPECIFICITY_METRIC,
    f'{names.AUC_METRIC}_{features.MALIGNANT_CLASS}',
    *(f'{name}_recall' for name in features.CLASS_NAMES
      if name != features.MALIGNANT_CLASS))
# Whole numbers among them.
COUNT_METRICS = (names.EXAMPLE_COUNT_METRIC, MALIGNANT_EXAMPLES)
# Gated against the served model at each gated site.
REGRESSION_METRICS: Tuple[str, ...] = (names.ACCURACY_METRIC,
                                       names.MALIGNANT_SENSITIVITY_METRIC)


@dataclasses.dataclass(frozen=True)
class SiteVerdict:
  site: str
  malignant_examples: int
  # False: too few malignant scans to gate on; reported only.
  gated: bool
  # The candidate's and the served model's SITE_TABLE_METRICS at this site;
  # None where undefined (a class the site lacks); `baseline` empty without one.
  metrics: Dict[str, Optional[float]]
  baseline: Dict[str, Optional[float]]
  # One line per broken rule, naming the site and the metric.
  failures: Tuple[str, ...] = ()

  @property
  def passed(self) -> bool:
    return not self.failures


@dataclasses.dataclass(frozen=True)
class SiteGateResult:
  min_site_malignant_examples: int
  min_malignant_recall: float
  regression_tolerance: float
  sites: Tuple[SiteVerdict, ...] = ()

  @property
  def passed(self) -> bool:
    return all(site.passed for site in self.sites)

  @property
  def failures(self) -> Tuple[str, ...]:
    return tuple(line for site in self.sites for line in site.failures)

  @property
  def failed_sites(self) -> Tuple[str, ...]:
    return tuple(site.site for site in self.sites if not site.passed)

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True,
                      allow_nan=False) + '\n'

  @classmethod
  def from_json(cls, text: str) -> 'SiteGateResult':
    fields = json.loads(text)
    return cls(**{**fields, 'sites': tuple(
        SiteVerdict(**{**site, 'failures': tuple(site['failures'])})
        for site in fields['sites'])})


def _table(metrics: Mapping[str, float]) -> Dict[str, Optional[float]]:
  return {name: metric_values.defined(metrics.get(name)) for name in SITE_TABLE_METRICS}


def _failures(site: str, count: int, candidate: Mapping[str, Optional[float]],
              baseline: Mapping[str, Optional[float]], rules: rules_lib.BlessingRules
              ) -> Tuple[str, ...]:
  failures = []
  sensitivity = candidate[names.MALIGNANT_SENSITIVITY_METRIC]
  if sensitivity is None or sensitivity < rules.min_malignant_recall:
    failures.append(
        f"site '{site}': {names.MALIGNANT_SENSITIVITY_METRIC} = "
        f'{metric_values.text(sensitivity)}, below the required '
        f'{rules.min_malignant_recall:.4f} ({count} malignant test scans)')
  for name in REGRESSION_METRICS if baseline else ():
    if candidate[name] is None or baseline[name] is None:
      continue
    change = candidate[name] - baseline[name]
    if change < -rules.regression_tolerance - rules_lib.CHANGE_SLACK:
      failures.append(
          f"site '{site}': {name} is {change:+.4f} against the served model "
          f'({candidate[name]:.4f} vs {baseline[name]:.4f}; allowed: '
          f'{-rules.regression_tolerance:+.4f} or better)')
  return tuple(failures)


def judge(candidate: Mapping[str, Mapping[str, float]],
          baseline: Optional[Mapping[str, Mapping[str, float]]],
          rules: rules_lib.BlessingRules) -> SiteGateResult:
  """Verdicts per site from each site's metrics (site -> metric -> value).

  `baseline` holds the served model's metrics per site, None when nothing is
  served; a site the baseline was not measured on has no regression rule.
  """
  verdicts = []
  for site in sorted(candidate):
    metrics = _table(candidate[site])
    served = _table(baseline[site]) if baseline and site in baseline else {}
    count = int(metrics[MALIGNANT_EXAMPLES] or 0)
    gated = count >= rules.min_site_malignant_examples
    verdicts.append(SiteVerdict(
        site=site, malignant_examples=count, gated=gated, metrics=metrics,
        baseline=served,
        failures=_failures(site, count, metrics, served, rules) if gated else ()))
  return SiteGateResult(rules.min_site_malignant_examples, rules.min_malignant_recall,
                        rules.regression_tolerance, tuple(verdicts))


def write(result: SiteGateResult, evaluation_uri: str) -> None:
  with fileio.open(os.path.join(evaluation_uri, names.SITE_GATE_FILE), 'w') as f:
    f.write(result.to_json())


def read(evaluation_uri: str) -> Optional[SiteGateResult]:
  """The verdicts beside an evaluation; None for one made before the gate existed."""
  path = os.path.join(evaluation_uri, names.SITE_GATE_FILE)
  if not fileio.exists(path):
    return None
  with fileio.open(path, 'r') as f:
    return SiteGateResult.from_json(f.read())


def table_rows(result: SiteGateResult) -> Sequence[Sequence[Any]]:
  """One row per site: site, the SITE_TABLE_METRICS as text, and its verdict."""
  rows = []
  for site in result.sites:
    verdict = ('pass' if site.passed else 'FAIL') if site.gated else (
        f'not gated (< {result.min_site_malignant_examples} malignant)')
    rows.append([site.site] + [
        metric_values.text(site.metrics.get(name), 0 if name in COUNT_METRICS else 4)
        for name in SITE_TABLE_METRICS] + [verdict])
  return rows
