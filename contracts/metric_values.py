"""Metric values that may be undefined, as JSON and as text.

A rate is undefined where its denominator is empty: the recall of `normal` at
a site that has no normal scans (BUS-BRA), the precision of a class the model
never predicts. TFMA gives NaN there; JSON has no NaN (Python writes a token
other parsers reject) and "nan" in a table reads like a fault. So undefined
values are `None` in JSON and "n/a" for people.
"""

import math
from typing import Dict, Mapping, Optional

NOT_AVAILABLE = 'n/a'


def defined(value: Optional[float]) -> Optional[float]:
  """`value`, or None where it is missing, NaN or infinite."""
  if value is None or not math.isfinite(value):
    return None
  return float(value)


def defined_all(metrics: Mapping[str, Optional[float]]) -> Dict[str, Optional[float]]:
  return {name: defined(value) for name, value in metrics.items()}


def text(value: Optional[float], digits: int = 4) -> str:
  """`value` with `digits` decimals, or "n/a" where it is undefined."""
  value = defined(value)
  return NOT_AVAILABLE if value is None else f'{value:.{digits}f}'


def signed_text(value: Optional[float], digits: int = 4) -> str:
  """Like `text`, with the sign always shown: a change against a baseline."""
  value = defined(value)
  return NOT_AVAILABLE if value is None else f'{value:+.{digits}f}'
