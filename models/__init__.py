"""Model code for the Transform and Trainer components.

Importing the package selects Keras 2: TF Transform and TFMA support Keras 2
only, so `tf.keras` must resolve to `tf_keras`, which TensorFlow decides when
it is first imported. Entry points therefore import `models` before anything
that imports TensorFlow.

`configure_tensorflow` is the one TensorFlow setting model code needs, called
by the code that traces Keras functions (training, export) and by the test
setup.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')


def configure_tensorflow() -> None:
  """Has autograph treat `tf_keras` like `keras`: as graph-ready, not to convert.

  Autograph leaves the `keras` package alone but does not know `tf_keras`, and
  re-compiles hundreds of its functions on every first trace: 25 s before the
  first step of a one-layer model on 2 cores. Calling this again changes nothing.
  """
  # pylint: disable=g-import-not-at-top
  from tensorflow.python.autograph.core import config as autograph_config
  if not any(isinstance(rule, autograph_config.DoNotConvert) and rule.matches('tf_keras')
             for rule in autograph_config.CONVERSION_RULES):
    autograph_config.CONVERSION_RULES = (
        autograph_config.DoNotConvert('tf_keras'), *autograph_config.CONVERSION_RULES)
