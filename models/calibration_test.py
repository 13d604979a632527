"""Temperature scaling: fitted on held-out predictions, never changes a decision."""

import numpy as np
import pytest
import tensorflow as tf

from models import calibration


def _softmax(logits):
  shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
  return shifted / shifted.sum(axis=1, keepdims=True)


@pytest.mark.parametrize('true_temperature', [0.5, 1.0, 3.0])
def test_fit_recovers_the_temperature_that_generated_the_labels(true_temperature):
  rng = np.random.default_rng(0)
  logits = rng.normal(0.0, 3.0, size=(4000, 3))
  calibrated = _softmax(logits / true_temperature)
  labels = np.array([rng.choice(3, p=p) for p in calibrated])
  fitted = calibration.fit_temperature(_softmax(logits), labels)
  assert fitted == pytest.approx(true_temperature, rel=0.15)


def test_an_overconfident_model_is_flattened():
  labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
  # Always 98% sure; wrong on a quarter of the images.
  predicted = np.array([0, 1, 2, 0, 1, 2, 1, 0])
  probs = np.full((8, 3), 0.01)
  probs[np.arange(8), predicted] = 0.98
  assert calibration.fit_temperature(probs, labels) > 1.5


def test_scaling_keeps_the_ranking_and_sums_to_one():
  probs = tf.constant([[0.7, 0.2, 0.1], [0.05, 0.15, 0.8], [1.0, 0.0, 0.0]])
  for temperature in (0.5, 1.0, 2.5):
    scaled = calibration.temperature_scale(probs, temperature).numpy()
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(scaled.argmax(axis=1), [0, 2, 0])
  np.testing.assert_allclose(calibration.temperature_scale(probs, 1.0), probs, atol=1e-6)
  flattened = calibration.temperature_scale(probs, 2.5).numpy()
  assert flattened[0, 0] < 0.7 and flattened[1, 2] < 0.8


def test_no_eval_examples_leaves_the_scores_alone():
  assert calibration.fit_temperature(np.zeros((0, 3)), np.zeros((0,), np.int64)) == 1.0
