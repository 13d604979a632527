"""Test setup shared by every test: Keras 2 before TensorFlow, and synthetic data."""

import models  # noqa: F401  (selects Keras 2 before any test imports TensorFlow)
