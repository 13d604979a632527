"""Test setup shared by every test: Keras 2 before any test imports TensorFlow.

With the Makefile's `--dist loadfile --no-loadscope-reorder`, pytest-xdist hands
whole files to its workers in the order collected here, the next file to
whichever worker runs low. The end-to-end files (minutes each) go first, so the
longest ones start at once on both workers and the unit test files (seconds
each) fill in around them, rather than an end-to-end file starting last and
running alone.
"""

import models

models.configure_tensorflow()


def pytest_collection_modifyitems(items):
  items.sort(key=lambda item: item.get_closest_marker('e2e') is None)
