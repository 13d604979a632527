"""One exported model for the whole serving suite: building it is the slow part."""

import pytest
import tensorflow as tf

from contracts import configs
from tests.fixtures import exported_model

# The smaller network exports in a fifth of busi_net's time; the serving
# contract does not depend on which network sits behind it.
TEST_MODEL = configs.ModelConfig(name='seed_cnn', image_size=32)
# Not the identity, so the tests see it in the served scores.
TEST_TEMPERATURE = 1.7


@pytest.fixture(scope='session')
def exported(tmp_path_factory) -> exported_model.ExportedModel:
  work_dir = tmp_path_factory.mktemp('exported_model')
  return exported_model.export_untrained_model(
      TEST_MODEL, str(work_dir), str(work_dir / 'saved_model'),
      temperature=TEST_TEMPERATURE)


@pytest.fixture(scope='session')
def served(exported):
  """The SavedModel as TF Serving sees it: signatures only, no Python model code."""
  return tf.saved_model.load(exported.saved_model_dir)
