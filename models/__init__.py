"""Model code for the Transform and Trainer components.

Two process-wide settings must precede any model code:

* TF Transform and TFMA support Keras 2 only, so `tf.keras` must resolve to
  `tf_keras`; that is chosen when TensorFlow is first imported.
* TensorFlow's autograph leaves the `keras` package alone (its internals are
  graph-ready) but does not know `tf_keras`, and re-compiles hundreds of its
  functions on every first trace: 25 s before the first step of a one-layer
  model on 2 cores. Treating `tf_keras` like `keras` removes that.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

# pylint: disable=g-import-not-at-top,wrong-import-position
from tensorflow.python.autograph.core import config as _autograph_config

_autograph_config.CONVERSION_RULES = (
    _autograph_config.DoNotConvert('tf_keras'), *_autograph_config.CONVERSION_RULES)
