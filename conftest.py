"""Test setup shared by every test: Keras 2 before any test imports TensorFlow."""

import models

models.configure_tensorflow()
