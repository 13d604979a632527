"""Model code for the Transform and Trainer components.

Importing the package selects Keras 2: TF Transform and TFMA support Keras 2
only, so `tf.keras` must resolve to `tf_keras`, which TensorFlow decides when
it is first imported. Entry points therefore import `models` before anything
that imports TensorFlow.

Importing it also quiets the third-party notices a run would print dozens of
times and that ask nothing of a user (`quiet_third_party_notices`); like the
Keras choice, that has to happen before those libraries load. Our own warnings
and every other library's are left as they are.

`configure_tensorflow` is the one TensorFlow setting model code needs, called
by the code that traces Keras functions (training, export) and by the test
setup.
"""

import logging
import os
import warnings

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
# TensorFlow's C++ log below FATAL. On a machine without a GPU the pinned
# wheel logs three ERROR lines at import ("Unable to register cuFFT/cuDNN/cuBLAS
# factory": its CUDA plugins register twice), and INFO/WARNING lines about CPU
# features; an error that fails an op still reaches Python as an exception
# with its message. The Makefile sets the same.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (logger, start of the message) of log lines the pinned libraries print on
# every run and that ask nothing of a user.
_LOG_NOTICES = (
    # TFX's input resolution, once per channel of every component: the local
    # orchestrator ignores property predicates, which this pipeline never sets
    # (tfx/orchestration/portable/input_resolution/channel_resolver.py, TFX 1.16).
    ('absl', 'ArtifactQuery.property_predicate is not supported.'),
    ('absl', 'ContextQuery.property_predicate is not supported.'),
    # tf_keras, when a library loads the exported model through Keras' loader:
    # models/signatures.py writes it with tf.saved_model.save, on purpose.
    ('tensorflow', 'SavedModel saved prior to TF 2.5 detected when loading Keras model'),
    # Beam computes TFRecord checksums in Python: python-snappy is not in the lock.
    ('apache_beam.io.tfrecordio', "Couldn't find python-snappy"),
    # The Trainer, once per split it reads: TFX 1.16's Transform writes its
    # transformed examples as tf.Example without recording the payload_format
    # property (components/transform/executor.py), so the reader falls back to
    # tf.Example (components/util/examples_utils.py), which is what they are.
    ('absl', 'Examples artifact does not have payload_format custom property.'),
)
# TensorFlow's deprecation notices name their caller: "From <file>:<line>: ...".
_DEPRECATION = 'is deprecated and will be removed'


def _is_ours(path: str) -> bool:
  """Whether a source file is this project's (a virtualenv inside it is not)."""
  return path.startswith(_PROJECT_DIR + os.sep) and 'site-packages' not in path.split(os.sep)


class _DropNotices(logging.Filter):
  """Drops the known notices of one logger, and deprecation notices that
  TensorFlow raises for library code (TFMA, TFX); ours stay visible."""

  def __init__(self, prefixes):
    super().__init__()
    self._prefixes = tuple(prefixes)

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    if message.startswith(self._prefixes):
      return False
    if _DEPRECATION in message and message.startswith('From '):
      return _is_ours(message[len('From '):].split(':', 1)[0])
    return True


def quiet_third_party_notices() -> None:
  """Filters the known notices of the pinned libraries, and nothing else.

  - google.api_core warns once per Google client package it loads (about 15 in
    a run) that Python 3.10 is past Google's support window, and
    google-cloud-aiplatform that google-cloud-storage 2.x support will end:
    TFX 1.16 runs on Python 3.9-3.10 only and requirements.lock pins what it
    resolves to (google/api_core/_python_version_support.py).
  - TFMA divides by zero for a class with no example in a slice; the run
    summary and the report show such a metric as n/a.
  - The log lines of `_LOG_NOTICES`, and TensorFlow's deprecation notices for
    calls made inside TFMA and TFX.
  Calling this again changes nothing.
  """
  warnings.filterwarnings('ignore', category=FutureWarning,
                          module=r'google\.api_core\._python_version_support')
  warnings.filterwarnings('ignore', message='Support for google-cloud-storage < 3.0.0',
                          category=FutureWarning, module=r'google\.cloud\.aiplatform\.')
  warnings.filterwarnings('ignore', message='invalid value encountered in divide',
                          category=RuntimeWarning,
                          module=r'tensorflow_model_analysis\.metrics\.')
  for name in dict.fromkeys(logger for logger, _ in _LOG_NOTICES):
    logger = logging.getLogger(name)
    if not any(isinstance(f, _DropNotices) for f in logger.filters):
      logger.addFilter(_DropNotices(p for n, p in _LOG_NOTICES if n == name))


quiet_third_party_notices()


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
