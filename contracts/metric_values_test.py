"""Undefined metric values become None and "n/a", never NaN."""

import json
import math

from contracts import metric_values


def test_nan_and_infinities_are_undefined_and_numbers_pass():
  assert metric_values.defined(float('nan')) is None
  assert metric_values.defined(math.inf) is None
  assert metric_values.defined(None) is None
  assert metric_values.defined(0.5) == 0.5


def test_json_of_defined_values_has_no_nan():
  values = metric_values.defined_all({'normal_recall': float('nan'), 'accuracy': 0.75})
  text = json.dumps(values, allow_nan=False)
  assert json.loads(text) == {'normal_recall': None, 'accuracy': 0.75}


def test_text_says_n_a_where_undefined():
  assert metric_values.text(float('nan')) == 'n/a'
  assert metric_values.text(None) == 'n/a'
  assert metric_values.text(0.123456) == '0.1235'
  assert metric_values.signed_text(-0.25, 2) == '-0.25'
  assert metric_values.signed_text(float('nan')) == 'n/a'
