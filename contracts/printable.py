"""Names as one line of text: a file name may hold a newline, a message may not.

A stop is one line per file and `predict` prints one line per image, so a
control character in a name (legal on POSIX file systems) is shown escaped.
"""

import re

CONTROL_CHARACTER = re.compile(r'[\x00-\x1f\x7f]')


def one_line(text: str) -> str:
  """`text` with each control character escaped (a newline becomes the two characters \\n)."""
  return CONTROL_CHARACTER.sub(lambda match: match.group().encode('unicode_escape').decode(),
                               text)
