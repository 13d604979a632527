"""Timed start and finish lines for each component of a local run.

LocalDagRunner runs the components one after another and says so only in
INFO logs, which stay hidden: TFX's other INFO output would drown everything,
and absl resets its logger's level whenever a library parses flags, so a log
filter misses most components. `component_progress` therefore times each
component's launch itself. It also lets INFO lines that track long steps
through (`SHOWN_INFO_PREFIXES`, e.g. ImageExampleGen's ingestion progress,
which runs first) while dropping the rest.
"""

import contextlib
import logging
import sys
import time
from typing import Iterator, Optional, TextIO

from tfx.orchestration.portable import launcher

# INFO messages worth seeing during a run: ingestion progress and its outcome.
SHOWN_INFO_PREFIXES = ('ImageExampleGen:',)


class _LongStepLines(logging.Filter):
  """Keeps warnings and the INFO lines of long steps; drops other INFO lines."""

  def filter(self, record: logging.LogRecord) -> bool:
    return (record.levelno >= logging.WARNING or
            record.getMessage().startswith(SHOWN_INFO_PREFIXES))


@contextlib.contextmanager
def component_progress(out: Optional[TextIO] = None) -> Iterator[None]:
  """Prints '[elapsed] <component> started/finished in N s' while the block runs."""
  out = out or sys.stdout
  run_started = time.time()
  launch = launcher.Launcher.launch

  def timed_launch(self: launcher.Launcher):
    component = self._pipeline_node.node_info.id  # pylint: disable=protected-access
    started = time.time()
    print(f'[{started - run_started:7.1f} s] {component} started', file=out, flush=True)
    result = launch(self)
    print(f'[{time.time() - run_started:7.1f} s] {component} finished in '
          f'{time.time() - started:.1f} s', file=out, flush=True)
    return result

  absl_logger = logging.getLogger('absl')
  level, long_steps = absl_logger.level, _LongStepLines()
  absl_logger.setLevel(logging.INFO)
  absl_logger.addFilter(long_steps)
  launcher.Launcher.launch = timed_launch
  try:
    yield
  finally:
    launcher.Launcher.launch = launch
    absl_logger.removeFilter(long_steps)
    absl_logger.setLevel(level)
