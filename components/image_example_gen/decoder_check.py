"""The model's own image decoder, run on one file's bytes to see if it reads them.

Transform's graph and the serving signatures decode images with
`models.preprocessing.decode_image` (TensorFlow's PNG/JPEG decoders behind a
header check). PIL, which the audit uses to measure and hash images, is more
forgiving: it reads a PNG cut short before its end chunk, and converts CMYK
JPEGs that TensorFlow's decoder refuses. Running the same decoder here makes
the audit accept exactly what training and serving can read.
"""

import re
from typing import Optional

import tensorflow as tf

from models import preprocessing

# The decode's output size does not matter for the check; small is cheap.
_CHECK_SIZE = 8
# A graph error's message tells where the op was defined before what went
# wrong; only the op's own words are kept.
_CONTEXT_LINE = re.compile(r'^(Graph execution error|Detected at node|File "|\[\[)')
_NODE_NAME = re.compile(r'\{\{[^}]*\}\}|\[\[[^\]]*\]\]|\[Op:[^\]]*\]')


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def _decode(encoded: tf.Tensor) -> tf.Tensor:
  return preprocessing.decode_image(encoded, _CHECK_SIZE)


def decoder_error(encoded: bytes) -> Optional[str]:
  """Why the model's decoder rejects `encoded`, or None when it reads it."""
  try:
    _decode(tf.constant(encoded))
  except tf.errors.InvalidArgumentError as e:
    lines = [line.strip() for line in _NODE_NAME.sub('', e.message).splitlines()]
    words = [line for line in lines if line and not _CONTEXT_LINE.match(line)]
    return (f"TensorFlow's image decoder, which Transform and the served model "
            f"use, cannot read it ({words[-1] if words else 'unreadable image'}); "
            're-save it as an 8-bit grey or RGB PNG or JPEG')
  return None
