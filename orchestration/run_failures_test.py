"""A full disk is recognised however the writer reports it."""

import errno
import os
import signal
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


def test_an_os_error_names_its_path():
  advice = run_failures.advice(
      _wrapped(PermissionError(errno.EACCES, 'Permission denied', '/out/tfx/x')), '/out')
  assert advice.startswith('An operating-system error: Permission denied on /out/tfx/x.')


def test_a_tensorflow_file_error_is_an_os_error():
  error = tf.errors.PermissionDeniedError(None, None, '/out/x; Permission denied')
  assert run_failures.advice(_wrapped(error), '/out').startswith(
      'An operating-system error: /out/x; Permission denied.')


def test_a_terminating_signal_raises_interrupted():
  before = signal.getsignal(signal.SIGTERM)
  previous = run_failures.interrupt_on_termination()
  try:
    try:
      os.kill(os.getpid(), signal.SIGTERM)
      raised = None
    except KeyboardInterrupt as e:
      raised = e
    assert run_failures.signal_name(raised) == 'SIGTERM'
    assert run_failures.signal_name(KeyboardInterrupt()) == 'SIGINT'
  finally:
    run_failures.restore_signals(previous)
  assert signal.getsignal(signal.SIGTERM) == before
