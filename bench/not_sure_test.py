"""The not-sure bench's parts on small arrays: the decision rule, the signals, a site's row."""

import numpy as np

from bench import not_sure


def _scored(penultimate, labels, logits=None):
  penultimate = np.asarray(penultimate, np.float64)
  logits = np.zeros((len(labels), 3)) if logits is None else np.asarray(logits, np.float64)
  return not_sure.Scored(np.asarray(labels), penultimate, logits,
                         {'context': logits, 'lesion': logits}, np.array([''] * len(labels)))


def test_decisions_refer_at_the_threshold_else_the_likelier_other_class():
  probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3]])
  # benign, malignant, normal: malignant is index 1.
  assert not_sure.decisions(probs, 1, 0.4).tolist() == [0, 2, 1]


def test_mahalanobis_is_small_near_a_train_class_and_large_far_from_all():
  rng = np.random.default_rng(0)
  train = np.concatenate([rng.normal(0, 1, (40, 6)), rng.normal(5, 1, (40, 6))])
  model = not_sure.MahalanobisModel(_scored(train, [0] * 40 + [1] * 40), components=4)
  near, far = model.distance(_scored(np.array([[0.0] * 6, [40.0] * 6]), [0, 0]))
  assert near < 3 < 10 < far


def test_signals_agree_in_direction_on_a_sure_and_an_unsure_scan():
  train = np.random.default_rng(1).normal(0, 1, (30, 4))
  model = not_sure.MahalanobisModel(_scored(train, [0] * 15 + [2] * 15), components=3)
  scored = _scored(np.zeros((2, 4)), [0, 0], logits=[[8.0, 0.0, 0.0], [0.1, 0.0, 0.05]])
  values = not_sure.signals(scored, 1.0, 1, 0.3, model)
  assert set(values) == set(not_sure.SIGNALS)
  assert values['max_probability'][1] > values['max_probability'][0]
  assert values['energy'][1] > values['energy'][0]


def test_a_site_row_counts_firings_and_measures_error_detection():
  wrong = np.array([True, True, False, False, False, False])
  separating = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.4])
  row = not_sure.site_row('site', wrong, {'max_probability': separating},
                          {'max_probability': 0.5})
  figures = row['signals']['max_probability']
  assert (row['n'], row['wrong']) == (6, 2)
  assert figures['auroc'] == 1.0 and figures['fires'] == 2 and figures['errors_caught'] == 2
  assert figures['error_rate_flagged'] == 1.0 and figures['error_rate_unflagged'] == 0.0
  lower, upper = figures['auroc_ci95']
  assert lower <= 1.0 <= upper


def test_no_auroc_where_every_decision_is_right():
  row = not_sure.site_row('site', np.zeros(4, bool), {'energy': np.arange(4.0)},
                          {'energy': 2.0})
  assert row['signals']['energy']['auroc'] is None
