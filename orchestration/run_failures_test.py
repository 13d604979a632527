"""A full disk is recognised however the writer reports it."""

import errno
import sqlite3

import tensorflow as tf

from orchestration import run_failures


def _wrapped(cause):
  try:
    try:
      raise cause
    except Exception as e:
      raise RuntimeError('component failed') from e
  except RuntimeError as outer:
    return outer


def test_a_full_disk_is_found_along_the_exception_chain():
  for cause in (OSError(errno.ENOSPC, 'No space left on device'),
                tf.errors.ResourceExhaustedError(None, None, 'x; No space left on device'),
                sqlite3.OperationalError('database or disk is full')):
    advice = run_failures.advice(_wrapped(cause), '/out')
    assert advice.startswith('The disk is full (')
    assert 'Free space on the disk that holds /out' in advice


def test_other_failures_are_left_alone():
  assert run_failures.advice(_wrapped(ValueError('bad')), '/out') is None
