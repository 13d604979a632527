"""The "not sure" cut-off, set on the eval split, and the served flag that applies it."""

import numpy as np
import pytest
import tensorflow as tf

from models import not_sure


def _scores(top: list) -> np.ndarray:
  """Three-class scores whose largest is `top`, the rest shared equally."""
  top = np.asarray(top, np.float64)
  rest = (1.0 - top) / 2
  return np.stack([top, rest, rest], axis=1)


def test_the_cutoff_flags_the_least_sure_fraction_of_the_eval_split():
  eval_scores = _scores(np.linspace(0.40, 0.99, 20))
  cutoff = not_sure.choose_cutoff(eval_scores, fraction=0.25)
  flagged = not_sure.unsureness(eval_scores) >= cutoff
  assert flagged.sum() == 5
  # The least sure ones, those with the lowest top score.
  assert flagged[:5].all() and not flagged[5:].any()


def test_the_cutoff_lies_between_the_eval_scans_it_separates():
  eval_scores = _scores([0.5, 0.6, 0.7, 0.8])
  cutoff = not_sure.choose_cutoff(eval_scores, fraction=0.25)
  assert cutoff == pytest.approx((0.5 + 0.4) / 2)


@pytest.mark.parametrize('fraction, flagged', [(1.0, 4), (1e-6, 1)])
def test_every_fraction_flags_its_share_rounded_up(fraction, flagged):
  eval_scores = _scores([0.5, 0.6, 0.7, 0.8])
  cutoff = not_sure.choose_cutoff(eval_scores, fraction=fraction)
  assert (not_sure.unsureness(eval_scores) >= cutoff).sum() == flagged


def test_without_eval_scans_nothing_is_flagged():
  cutoff = not_sure.choose_cutoff(np.zeros((0, 3)))
  assert not not_sure.flag(tf.constant([[0.34, 0.33, 0.33]]), cutoff).numpy().any()


def test_the_served_flag_agrees_with_the_eval_signal_in_float32():
  eval_scores = _scores(np.linspace(0.35, 1.0, 101))
  cutoff = not_sure.choose_cutoff(eval_scores)
  served = not_sure.flag(tf.constant(eval_scores, tf.float32), cutoff).numpy()
  np.testing.assert_array_equal(served, not_sure.unsureness(eval_scores) >= cutoff)
  assert served.sum() == round(not_sure.FLAG_FRACTION * 101 + 0.5)
