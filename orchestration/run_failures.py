"""Failures of the machine, not of the data or the code, as one line of advice.

A full disk surfaces as whatever the writer raises: an OSError with ENOSPC
from Python, a TensorFlow error whose message says so from a SavedModel or
TFRecord writer, or a SQLite error from ML Metadata. The cause is looked for
along the whole chain of exceptions, so the wrapping an orchestrator adds does
not hide it. Any other operating-system error (no permission, a read-only
file system, a folder where a file should be) is named the same way, with the
path it concerns.

A signal that ends the run (SIGINT from Ctrl-C, SIGTERM from `kill` or a
scheduler, SIGHUP from a closed terminal) becomes `Interrupted`, a
KeyboardInterrupt, so that no component's `except Exception` swallows it and
the runner can say, in one line, what the stop left behind.
"""

import errno
import signal
from typing import Any, Dict, Iterator, Optional

import tensorflow as tf

_DISK_FULL_TEXTS = ('no space left on device', 'database or disk is full',
                    'disk quota exceeded')
# How TensorFlow's file system and other wrappers word an OS error they do
# not raise as OSError.
_OS_ERROR_TEXTS = ('permission denied', 'read-only file system', 'not a directory',
                   'is a directory', 'input/output error', 'too many open files')
_TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
  """A terminating signal arrived; `signal_name` says which."""

  def __init__(self, signal_name: str):
    super().__init__(signal_name)
    self.signal_name = signal_name


def _raise_interrupted(signum: int, _frame) -> None:
  raise Interrupted(signal.Signals(signum).name)


def interrupt_on_termination() -> Dict[int, Any]:
  """Makes SIGINT raise KeyboardInterrupt and SIGTERM and SIGHUP `Interrupted`.

  A signal the parent set to be ignored (`nohup` ignores SIGHUP, a shell's
  background job SIGINT) stays ignored. Returns the handlers it replaced.
  """
  handlers = {signal.SIGINT: signal.default_int_handler,
              **{signum: _raise_interrupted for signum in _TERMINATING_SIGNALS}}
  previous = {}
  for signum, handler in handlers.items():
    if signal.getsignal(signum) is not signal.SIG_IGN:
      previous[signum] = signal.signal(signum, handler)
  return previous


def restore_signals(previous: Dict[int, Any]) -> None:
  """Puts back the handlers `interrupt_on_termination` replaced."""
  for signum, handler in previous.items():
    signal.signal(signum, handler)


def signal_name(interrupt: KeyboardInterrupt) -> str:
  return interrupt.signal_name if isinstance(interrupt, Interrupted) else 'SIGINT'


def _chain(error: BaseException) -> Iterator[BaseException]:
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    yield error
    error = error.__cause__ or error.__context__


def _is_disk_full(error: BaseException) -> bool:
  if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
    return True
  return any(text in str(error).lower() for text in _DISK_FULL_TEXTS)


def _one_line(error: BaseException) -> str:
  text = getattr(error, 'message', None) or str(error) or type(error).__name__
  return ' '.join(text.split())[:300]


def _os_error(error: BaseException) -> Optional[str]:
  """What an operating-system error says, with its path; None for other errors."""
  if isinstance(error, OSError) and error.errno is not None:
    path = f' on {error.filename}' if error.filename else ''
    return f'{error.strerror or errno.errorcode.get(error.errno, error.errno)}{path}'
  if (isinstance(error, (OSError, tf.errors.OpError))
      and any(text in _one_line(error).lower() for text in _OS_ERROR_TEXTS)):
    return _one_line(error)
  return None


def os_error(error: BaseException) -> Optional[str]:
  """The operating-system error along `error`'s chain, with its path, or None."""
  return next(filter(None, map(_os_error, _chain(error))), None)


def advice(error: BaseException, output_dir: str) -> Optional[str]:
  """What to do about `error`, or None when it is not a failure this knows."""
  for cause in _chain(error):
    if _is_disk_full(cause):
      return (f'The disk is full ({_one_line(cause)[:200]}). Free space on the disk that '
              f'holds {output_dir}, or pass another --output-dir, and rerun: the '
              'components that finished are reused from the cache.')
  detail = os_error(error)
  if detail:
    return (f'An operating-system error: {detail}. Fix the permission or the path '
            'and rerun: the components that finished are reused from the cache.')
  return None
