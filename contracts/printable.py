"""Names and messages as one line: a file name may hold a newline, a message may not.

A stop is one line per file and `predict` prints one line per image, so a
control character in a name (legal on POSIX file systems) is shown escaped,
and a TensorFlow error is cut to the line that says what was wrong.
"""

import re

CONTROL_CHARACTER = re.compile(r'[\x00-\x1f\x7f]')
_TF_ERROR_NOISE = ('[[', 'Graph execution error', 'Detected at node', '<stack traces')
# A failed tf.debugging.Assert's own message: in a graph, then run eagerly.
_ASSERTION_MESSAGES = (re.compile(r'assertion failed: \[(.*)\]'),
                       re.compile(r".*Summarized data: b'(.*)'"))


def one_line(text: str) -> str:
  """`text` with each control character escaped (a newline becomes the two characters \\n)."""
  return CONTROL_CHARACTER.sub(lambda match: match.group().encode('unicode_escape').decode(),
                               text)


def tf_error_reason(message: str) -> str:
  """The one line of a TensorFlow error that says what was wrong with the input."""
  lines = [line.strip() for line in message.splitlines()]
  reasons = [line for line in lines if line and not line.startswith(_TF_ERROR_NOISE)]
  reason = reasons[-1] if reasons else message.strip()
  for assertion in _ASSERTION_MESSAGES:
    match = assertion.fullmatch(reason)
    if match:
      return match.group(1)
  return reason
