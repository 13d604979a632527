"""The rule comparison chooses on eval only and measures both splits and each site."""

import numpy as np
import pytest

from bench import operating_point_rules


def _split(rng, malignant: int, others: int, shift: float):
  """Scores [n, 3] (benign, malignant, normal) whose malignant column ranks cancers higher."""
  labels = np.array([1] * malignant + [0] * (others - others // 3) + [2] * (others // 3))
  p_malignant = np.clip(rng.uniform(0, 0.6, labels.size) + shift * (labels == 1), 0, 0.98)
  rest = 1 - p_malignant
  benign_share = np.where(labels == 2, 0.2, 0.8)
  scores = np.stack([rest * benign_share, p_malignant, rest * (1 - benign_share)], axis=1)
  return scores, labels


def test_each_rule_is_chosen_on_eval_and_measured_everywhere():
  rng = np.random.default_rng(0)
  scores, labels, sites = {}, {}, {}
  for split, shift in (('eval', 0.35), ('test', 0.2)):
    scores[split], labels[split] = _split(rng, 31, 80, shift)
    sites[split] = np.where(np.arange(labels[split].size) % 2, 'busi', 'bus_bra')
  results = operating_point_rules.compare(scores, labels, sites,
                                          ('benign', 'malignant', 'normal'), 0.90)
  bound, observed = results
  assert (bound.rule, observed.rule) == ('bound', 'observed')
  assert bound.rates['eval']['all'].malignant_sensitivity.successes == 31
  assert observed.rates['eval']['all'].malignant_sensitivity.successes == 28
  assert bound.point.threshold < observed.point.threshold
  for result in results:
    assert set(result.rates) == {'eval', 'test'}
    assert set(result.rates['test']) == {'all', 'busi', 'bus_bra'}
    everything = result.rates['test']['all']
    per_site = [result.rates['test'][site] for site in ('busi', 'bus_bra')]
    assert sum(r.scans for r in per_site) == everything.scans == 111
    assert sum(r.accuracy_at_decision.successes for r in per_site) == (
        everything.accuracy_at_decision.successes)
    # At the eval split the rule's own record and the measured rates agree.
    assert result.rates['eval']['all'].malignant_specificity == result.point.specificity
  assert 'eval/busi' in operating_point_rules.table(results)
  assert observed.rates['eval']['all'].accuracy_top_class == pytest.approx(
      bound.rates['eval']['all'].accuracy_top_class)
