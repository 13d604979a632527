"""Rebuilds the HTML report of a past pipeline run from ML Metadata.

    python report.py [--output-dir outputs] [--run-id RUN_ID]

Without --run-id it reports the newest run. The report lands in
<output dir>/reports/<run id>.html, next to the run's artifacts.
"""

import argparse
import sys
from typing import List

import models

from contracts import names
from run_report import build


def main(argv: List[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output-dir', default='outputs',
                      help='the --output-dir the pipeline ran with')
  parser.add_argument('--run-id', help='the run to report (default: the newest); '
                                       'local_runner.py prints it as "Run <id>"')
  parser.add_argument('--pipeline-name', default=names.PIPELINE_NAME)
  args = parser.parse_args(argv)
  models.configure_tensorflow()  # Grad-CAM traces the network
  try:
    path = build.build_report(args.output_dir, args.run_id, args.pipeline_name)
  except ValueError as e:
    print(f'report.py: {e}', file=sys.stderr)
    return 2
  print(path)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
