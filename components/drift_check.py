"""DataDriftCheck: the new data set against the data the served model learnt from.

A new scanner, a changed export (other sizes, another intensity range) or a
shift in the share of malignant cases would otherwise go into training
unnoticed. This component computes TFDV statistics of the drift features (the
schema's features with a `drift_comparator`: label, site and device, and the
per-image intensity statistics ImageExampleGen records) for the train split of
this run and for the train split of the served version's training examples,
and has TFDV compare them (`tfdv.validate_statistics` with
`previous_statistics`): L-infinity distance between the value shares of a
categorical feature, Jensen-Shannon divergence between the histograms of a
numeric one, each against the threshold the schema gives it.

The served data is found as the Evaluator finds its baseline: the served
version of TF Serving's model directory, whose model card names the examples
it was trained on (components/served_data.py); no Resolver, so the same DAG
runs on Kubeflow. Both sides are computed here with the same options, so
their histograms compare like with like.

The result, `drift.json`, lists each drifted feature with both distributions
side by side. Policy 'warn' lets the run go on (the run summary names the
drift); 'stop' raises `DataDriftError`, and Transform waits for this check, so
nothing is trained.
"""

import dataclasses
import json
import os
from typing import Dict, List, Optional

import apache_beam as beam
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.utils import io_utils
from tfx_bsl.public import tfxio

from components import served_data
from components import validation_gate
from contracts import configs

DRIFT_FILE = 'drift.json'
_SCHEMA_FILE = 'schema.pbtxt'
_SPLIT = 'train'
_COMPARATORS = {
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: 'L-infinity',
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: 'Jensen-Shannon',
}


class DataDriftError(validation_gate.DataAnomaliesError):
  """The data drifted from the served model's under policy 'stop'; one line per feature."""


@dataclasses.dataclass(frozen=True)
class FeatureDrift:
  feature: str
  comparator: str                 # 'L-infinity' or 'Jensen-Shannon'
  value: float
  threshold: float
  # The two distributions side by side: value -> share for a categorical
  # feature; mean, std, min, median and max for a numeric one.
  served: Dict[str, float]
  new: Dict[str, float]

  @property
  def drifted(self) -> bool:
    return self.value > self.threshold

  def line(self) -> str:
    return (f'{self.feature}: {self.comparator} {self.value:.3f} > {self.threshold:g}; '
            f'served {_text(self.served)}; new {_text(self.new)}')


@dataclasses.dataclass(frozen=True)
class DriftResult:
  policy: str
  # The served version compared with; '' when there was none to compare with.
  served_version: str
  # Every compared feature, drifted or not.
  features: List[FeatureDrift]
  # Why nothing was compared, when nothing was.
  note: str = ''

  @property
  def drifted(self) -> List[FeatureDrift]:
    return [f for f in self.features if f.drifted]

  def summary_lines(self) -> List[str]:
    """What the run summary shows: one headline, then one line per drifted feature."""
    if not self.served_version:
      return [f'Drift: not checked ({self.note}).']
    if not self.drifted:
      return [f'Drift: none against the data of served version {self.served_version} '
              f'({len(self.features)} features compared).']
    action = 'run stopped' if self.policy == 'stop' else 'run went on'
    return ([f'Drift: {len(self.drifted)} of {len(self.features)} features drifted from '
             f'the data of served version {self.served_version} (policy {self.policy}: '
             f'{action}):']
            + [f'  - {f.line()}' for f in self.drifted])

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True) + '\n'

  @classmethod
  def from_json(cls, text: str) -> 'DriftResult':
    fields = json.loads(text)
    return cls(**{**fields, 'features': [FeatureDrift(**f) for f in fields['features']]})


def read(uri: str) -> Optional[DriftResult]:
  """The result in a DataDriftCheck output folder; None for any other folder."""
  path = os.path.join(uri, DRIFT_FILE)
  if not fileio.exists(path):
    return None
  with fileio.open(path, 'r') as f:
    return DriftResult.from_json(f.read())


def drift_schema(schema: schema_pb2.Schema) -> schema_pb2.Schema:
  """The schema's features that carry a drift comparator, and their domains."""
  kept = schema_pb2.Schema()
  kept.feature.extend(f for f in schema.feature if f.HasField('drift_comparator'))
  kept.string_domain.extend(schema.string_domain)
  return kept


def _text(distribution: Dict[str, float]) -> str:
  return '{' + ', '.join(f'{k}: {v:.3g}' for k, v in distribution.items()) + '}'


def _distribution(stats: statistics_pb2.DatasetFeatureStatisticsList,
                  feature: str) -> Dict[str, float]:
  for candidate in stats.datasets[0].features:
    if candidate.path.step and candidate.path.step[-1] == feature:
      if candidate.HasField('num_stats'):
        num = candidate.num_stats
        return {'mean': num.mean, 'std': num.std_dev, 'min': num.min,
                'median': num.median, 'max': num.max}
      total = candidate.string_stats.common_stats.num_non_missing or 1
      return {v.value: v.frequency / total for v in candidate.string_stats.top_values}
  return {}


def compare(current: statistics_pb2.DatasetFeatureStatisticsList,
            served: statistics_pb2.DatasetFeatureStatisticsList,
            schema: schema_pb2.Schema) -> List[FeatureDrift]:
  """TFDV's drift comparators on `current` against `served`, one entry per feature."""
  anomalies = tfdv.validate_statistics(current, schema, previous_statistics=served)
  compared = []
  for info in anomalies.drift_skew_info:
    feature = info.path.step[-1]
    for measurement in info.drift_measurements:
      compared.append(FeatureDrift(
          feature=feature, comparator=_COMPARATORS.get(measurement.type, 'unknown'),
          value=measurement.value, threshold=measurement.threshold,
          served=_distribution(served, feature), new=_distribution(current, feature)))
  return sorted(compared, key=lambda f: f.feature)


def _statistics(pipeline: beam.Pipeline, examples_uri: str, schema: schema_pb2.Schema,
                output_path: str, label: str) -> None:
  records = tfxio.TFExampleRecord(
      file_pattern=os.path.join(examples_uri, f'Split-{_SPLIT}', '*'), schema=schema)
  _ = (pipeline
       | f'Read[{label}]' >> records.BeamSource()
       | f'Statistics[{label}]' >> tfdv.GenerateStatistics(tfdv.StatsOptions(schema=schema))
       | f'Write[{label}]' >> tfdv.WriteStatisticsToBinaryFile(output_path))


def check(examples_uri: str, schema: schema_pb2.Schema, served_model_dir: str,
          policy: str, output_uri: str, pipeline: beam.Pipeline) -> DriftResult:
  """Compares, writes `drift.json` to `output_uri` and returns the result."""
  compared = drift_schema(schema)
  card = served_data.served_card(served_model_dir)
  baseline = card.data.examples_uri if card else ''
  if not card:
    result = DriftResult(policy, '', [], 'no model with a model card is served yet')
  elif not baseline or not fileio.glob(os.path.join(baseline, f'Split-{_SPLIT}', '*')):
    result = DriftResult(policy, '', [], f'served version {card.version} names no '
                         'training examples that are still on disk')
  else:
    current_path = os.path.join(output_uri, 'current_statistics.pb')
    served_path = os.path.join(output_uri, 'served_statistics.pb')
    with pipeline:
      _statistics(pipeline, examples_uri, compared, current_path, 'current')
      _statistics(pipeline, baseline, compared, served_path, 'served')
    result = DriftResult(policy, str(card.version), compare(
        tfdv.load_stats_binary(current_path), tfdv.load_stats_binary(served_path),
        compared))
  fileio.makedirs(output_uri)
  with fileio.open(os.path.join(output_uri, DRIFT_FILE), 'w') as f:
    f.write(result.to_json())
  return result


def enforce(result: DriftResult) -> None:
  """Raises DataDriftError, one line per drifted feature, on drift under policy 'stop'."""
  if result.drifted and result.policy == 'stop':
    raise DataDriftError(
        f'The data drifted from the data of served version {result.served_version} '
        f'(policy stop); nothing is trained or pushed:\n  '
        + '\n  '.join(f.line() for f in result.drifted))


@tfx.dsl.components.component(use_beam=True)
def DataDriftCheck(  # pylint: disable=invalid-name
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    drift: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    served_model_dir: tfx.dsl.components.Parameter[str],
    policy: tfx.dsl.components.Parameter[str],
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[beam.Pipeline] = None,
) -> None:
  """Writes drift.json; raises DataDriftError on drift under policy 'stop'."""
  if policy not in configs.DRIFT_POLICIES:
    raise ValueError(f'DataDriftCheck: policy must be one of '
                     f'{", ".join(configs.DRIFT_POLICIES)}, got {policy!r}')
  parsed = io_utils.parse_pbtxt_file(os.path.join(schema.uri, _SCHEMA_FILE),
                                     schema_pb2.Schema())
  enforce(check(examples.uri, parsed, served_model_dir, policy, drift.uri, beam_pipeline))
