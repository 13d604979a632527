"""Stops the run when ExampleValidator found anomalies.

ExampleValidator records anomalies but does not stop anything downstream. This
gate reads them and fails with one line per anomaly; otherwise it passes the
schema on, and Transform and Trainer take their schema from here, so they can
only run on data that passed validation, on any orchestrator.
"""

import os
from typing import List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils

_ANOMALIES_FILE = 'SchemaDiff.pb'
_SCHEMA_FILE = 'schema.pbtxt'


class DataAnomaliesError(RuntimeError):
  """The data does not match the schema; the message lists each anomaly."""


def describe_anomalies(anomalies_uri: str, split_names: List[str]) -> List[str]:
  """One readable line per anomaly, e.g. "split 'train', feature 'label': ..."."""
  lines = []
  for split in split_names:
    anomalies = anomalies_pb2.Anomalies()
    anomalies.ParseFromString(io_utils.read_bytes_file(
        os.path.join(anomalies_uri, f'Split-{split}', _ANOMALIES_FILE)))
    for feature, info in sorted(anomalies.anomaly_info.items()):
      lines.append(f"split '{split}', feature '{feature}': "
                   f'{info.short_description}: {info.description}')
    if anomalies.HasField('dataset_anomaly_info'):
      info = anomalies.dataset_anomaly_info
      lines.append(f"split '{split}', dataset: {info.short_description}: "
                   f'{info.description}')
  return lines


@tfx.dsl.components.component
def DataValidationGate(  # pylint: disable=invalid-name
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    validated_schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
) -> None:
  """Raises DataAnomaliesError on any anomaly; else outputs the schema unchanged."""
  problems = describe_anomalies(
      anomalies.uri, artifact_utils.decode_split_names(anomalies.split_names))
  if problems:
    raise DataAnomaliesError(
        f'The data does not match the schema ({len(problems)} anomalies); '
        'nothing is trained or pushed:\n  ' + '\n  '.join(problems))
  fileio.makedirs(validated_schema.uri)
  io_utils.copy_file(os.path.join(schema.uri, _SCHEMA_FILE),
                     os.path.join(validated_schema.uri, _SCHEMA_FILE), overwrite=True)
