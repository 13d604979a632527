"""Progress lines come from a real LocalDagRunner run, and the runner is left as found."""

import io
import logging
import os

from tfx import v1 as tfx
from tfx.orchestration.portable import launcher

from contracts import configs
from observability import progress


def _one_component_pipeline(root: str) -> tfx.dsl.Pipeline:
  schema = tfx.components.ImportSchemaGen(
      schema_file=os.path.join(configs.SCHEMA_DIR, 'schema.pbtxt'))
  return tfx.dsl.Pipeline(
      pipeline_name='progress_test', pipeline_root=os.path.join(root, 'tfx'),
      components=[schema],
      metadata_connection_config=tfx.orchestration.metadata
      .sqlite_metadata_connection_config(os.path.join(root, 'metadata.sqlite')))


def test_each_component_prints_its_start_and_finish_with_elapsed_time(tmp_path):
  launch, absl_level = launcher.Launcher.launch, logging.getLogger('absl').level
  out = io.StringIO()
  with progress.component_progress(out):
    tfx.orchestration.LocalDagRunner().run(_one_component_pipeline(str(tmp_path)))
  started, finished = out.getvalue().splitlines()
  assert started.endswith('] ImportSchemaGen started')
  assert ' ImportSchemaGen finished in ' in finished and finished.endswith(' s')
  assert launcher.Launcher.launch is launch
  assert logging.getLogger('absl').level == absl_level


def test_long_step_info_lines_pass_and_other_info_lines_do_not(tmp_path):
  logger = logging.getLogger('absl')
  seen = []
  handler = logging.Handler()
  handler.emit = lambda record: seen.append(record.getMessage())
  logger.addHandler(handler)
  try:
    with progress.component_progress(io.StringIO()):
      logger.info('ImageExampleGen: 100 of 780 images read.')
      logger.info('Running launcher for node')
      logger.warning('Something to look at')
  finally:
    logger.removeHandler(handler)
  assert seen == ['ImageExampleGen: 100 of 780 images read.', 'Something to look at']
