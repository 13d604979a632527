"""A run as the report needs it: its summary, its output artifacts, its settings.

Read once through `observability.metadata_run`; the summary is made from the
same reading.
"""

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

from ml_metadata.proto import metadata_store_pb2

from observability import metadata_run
from observability import run_summary


@dataclasses.dataclass
class RunRecord:
  summary: run_summary.RunSummary
  # (component, artifact type name) -> the artifacts it output in this run.
  artifacts: Dict[Tuple[str, str], List[metadata_store_pb2.Artifact]]
  # component -> execution property -> value, as the component received them.
  properties: Dict[str, Dict[str, str]]

  def uri(self, component: str, type_name: str) -> Optional[str]:
    found = self.artifacts.get((component, type_name))
    return found[0].uri if found else None


def load(metadata_path: str, pipeline_name: str, class_names: Sequence[str],
         run_id: Optional[str] = None) -> RunRecord:
  """Run `run_id` (default: the newest) of `pipeline_name`.

  Raises ValueError when the store has no such run.
  """
  run = metadata_run.read(metadata_path, pipeline_name, run_id)
  artifacts: Dict[Tuple[str, str], List[metadata_store_pb2.Artifact]] = {}
  for execution in run.executions:
    for type_name, outputs in execution.outputs.items():
      artifacts.setdefault((execution.component, type_name), []).extend(outputs)
  return RunRecord(run_summary.summarize_run(run, class_names), artifacts,
                   {e.component: e.properties for e in run.executions})
