"""ClassRateAtDecision counts the served decision, one class against the rest: at the
malignant operating point when the model returns its threshold, else at the argmax."""

import apache_beam as beam
import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from apache_beam.testing import util as beam_util
from tensorflow_model_analysis.metrics import metric_types

from blessing import clinical_metrics


def _inputs(label: int, scores, threshold=None):
  """One example; with a threshold, the predictions are the served signature's dict."""
  predictions = np.array(scores) if threshold is None else {
      'scores': np.array(scores, np.float32),
      'classes': np.array([b'benign', b'malignant', b'normal']),
      'malignant_threshold': np.float32(threshold)}
  return metric_types.StandardMetricInputs(
      labels=np.array([label]), predictions=predictions,
      example_weights=np.array([1.0]))


def _assert_combined(examples, rate: str, expected: float) -> None:
  metric = clinical_metrics.ClassRateAtDecision(name='m', class_id=1, malignant_id=1,
                                                rate=rate)
  computation = metric.computations(eval_config=tfma.EvalConfig(),
                                    model_names=[''], output_names=[''])[0]
  with beam.Pipeline() as pipeline:
    result = (pipeline | beam.Create(examples)
              | beam.CombineGlobally(computation.combiner))

    def check(outputs):
      (values,) = outputs
      assert values[computation.keys[0]] == pytest.approx(expected)

    beam_util.assert_that(result, check)


@pytest.mark.parametrize('rate, expected', [
    ('recall', 1 / 2),        # malignant scans called malignant: 1 of 2
    ('specificity', 2 / 3),   # non-malignant not called malignant: 2 of 3
    ('precision', 1 / 2),     # malignant calls that are malignant: 1 of 2
    ('count', 2),             # malignant scans: what a site's sensitivity rests on
    ('accuracy', 3 / 5),      # three-way: malignant, benign and normal right; 2 wrong
])
def test_rates_at_argmax_without_a_threshold(rate, expected):
  # The first malignant scan is called malignant at p=0.45 (top-1, though a
  # p >= 0.5 rule would miss it); the second is called benign.
  examples = [_inputs(1, [0.30, 0.45, 0.25]), _inputs(1, [0.6, 0.3, 0.1]),
              _inputs(0, [0.2, 0.7, 0.1]), _inputs(0, [0.8, 0.1, 0.1]),
              _inputs(2, [0.1, 0.2, 0.7])]
  _assert_combined(examples, rate, expected)


@pytest.mark.parametrize('rate, expected', [
    ('recall', 2 / 2),        # both malignant scans reach the threshold 0.25
    ('specificity', 1 / 3),   # the benign scan at 0.7 and the normal at 0.3 are referred
    ('precision', 2 / 4),
    ('count', 2),
    ('accuracy', 3 / 5),      # both malignant referred, one benign right, the normal referred
])
def test_rates_at_the_operating_point(rate, expected):
  # The second malignant scan, argmax benign, is referred at the threshold;
  # the normal scan at p(malignant)=0.3 is referred too (a false positive).
  examples = [_inputs(1, [0.30, 0.45, 0.25], 0.25), _inputs(1, [0.6, 0.3, 0.1], 0.25),
              _inputs(0, [0.2, 0.7, 0.1], 0.25), _inputs(0, [0.8, 0.1, 0.1], 0.25),
              _inputs(2, [0.1, 0.3, 0.6], 0.25)]
  _assert_combined(examples, rate, expected)


def test_below_the_threshold_the_decision_is_the_likelier_other_class():
  # Malignant is the top class but below the threshold: benign (0.35) beats normal.
  assert clinical_metrics.decided_class(np.array([0.35, 0.45, 0.2]), 1, 0.5) == 0
  assert clinical_metrics.decided_class(np.array([0.1, 0.45, 0.45]), 1, 0.5) == 2
  assert clinical_metrics.decided_class(np.array([0.1, 0.45, 0.45]), 1, 0.45) == 1
  assert clinical_metrics.decided_class(np.array([0.1, 0.45, 0.45]), 1, None) == 1


def test_rate_without_examples_is_nan():
  assert np.isnan(clinical_metrics.rate_from_counts(np.zeros(4), 'recall'))


def test_unknown_rate_is_rejected():
  with pytest.raises(ValueError, match='rate must be one of'):
    clinical_metrics.ClassRateAtDecision(name='m', class_id=1, malignant_id=1, rate='f1')


def test_a_rate_without_cases_is_nan_and_the_count_is_zero():
  no_positives = np.array([0.0, 0.0, 1.0, 3.0])
  assert np.isnan(clinical_metrics.rate_from_counts(no_positives, 'recall'))
  assert clinical_metrics.rate_from_counts(no_positives, 'count') == 0.0
