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

It compares the whole data and, when either side has several sites, each site
on its own (TFDV's statistics sliced by `site`): a site the served model never
saw is drift in itself, and a known site whose intensity or size moved is
named even when the other sites hide it in the whole.

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
from typing import Dict, List, Optional, Tuple

from absl import logging
import apache_beam as beam
import tensorflow_data_validation as tfdv
from tensorflow_data_validation import constants as tfdv_constants
from tensorflow_data_validation.utils import slicing_util
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
from contracts import features as features_lib

DRIFT_FILE = 'drift.json'
_SCHEMA_FILE = 'schema.pbtxt'
_SPLIT = 'train'
# TFDV names a slice by the feature and its value: `site_busi`.
_SITE_SLICE_PREFIX = f'{features_lib.SITE_KEY}_'
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
  # The site compared; '' for the whole data.
  site: str = ''
  # A numeric feature's histograms, for the report: [low, high, share] per
  # bucket of TFDV's standard histogram; empty for a categorical one.
  served_histogram: List[List[float]] = dataclasses.field(default_factory=list)
  new_histogram: List[List[float]] = dataclasses.field(default_factory=list)

  @property
  def drifted(self) -> bool:
    return self.value > self.threshold

  def line(self) -> str:
    where = f'site {self.site}: ' if self.site else ''
    return (f'{where}{self.feature}: {self.comparator} {self.value:.3f} > '
            f'{self.threshold:g}; served {_text(self.served)}; new {_text(self.new)}')


@dataclasses.dataclass(frozen=True)
class DriftResult:
  policy: str
  # The served version compared with; '' when there was none to compare with.
  served_version: str
  # Every compared feature, drifted or not.
  features: List[FeatureDrift]
  # Why nothing was compared, when nothing was.
  note: str = ''
  # Sites of this run's train split the served model's never had -> their images.
  new_sites: Dict[str, int] = dataclasses.field(default_factory=dict)

  @property
  def drifted(self) -> List[FeatureDrift]:
    return [f for f in self.features if f.drifted]

  def drift_lines(self) -> List[str]:
    """One line per new site, then per drifted feature: the whole data, then each site."""
    return ([f'site {site}: new site, not in the data of served version '
             f'{self.served_version} ({n} images in the train split)'
             for site, n in self.new_sites.items()]
            + [f.line() for f in self.drifted])

  def summary_lines(self) -> List[str]:
    """What the run summary shows: one headline, then one line per drift."""
    if not self.served_version:
      return [f'Drift: not checked ({self.note}).']
    compared = sorted({f.feature for f in self.features})
    sites = sorted({f.site for f in self.features if f.site})
    where = f', overall and at each of {_count(len(sites), "site")}' if sites else ''
    if not self.drift_lines():
      return [f'Drift: none against the data of served version {self.served_version} '
              f'({len(compared)} features compared{where}).']
    action = 'run stopped' if self.policy == 'stop' else 'run went on'
    drifted = sorted({f.feature for f in self.drifted})
    new = f'{_count(len(self.new_sites), "new site")}, ' if self.new_sites else ''
    return ([f'Drift: {new}{len(drifted)} of {len(compared)} features drifted{where} '
             f'from the data of served version {self.served_version} (policy '
             f'{self.policy}: {action}):']
            + [f'  - {line}' for line in self.drift_lines()])

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


def _count(n: int, thing: str) -> str:
  return f'{n} {thing}{"" if n == 1 else "s"}'


def _text(distribution: Dict[str, float]) -> str:
  return '{' + ', '.join(f'{k}: {v:.3g}' for k, v in distribution.items()) + '}'


def _feature_stats(stats: statistics_pb2.DatasetFeatureStatisticsList, feature: str
                   ) -> Optional[statistics_pb2.FeatureNameStatistics]:
  return next((candidate for candidate in stats.datasets[0].features
               if candidate.path.step and candidate.path.step[-1] == feature), None)


def _distribution(stats: statistics_pb2.DatasetFeatureStatisticsList,
                  feature: str) -> Dict[str, float]:
  found = _feature_stats(stats, feature)
  if found is None:
    return {}
  if found.HasField('num_stats'):
    num = found.num_stats
    return {'mean': num.mean, 'std': num.std_dev, 'min': num.min,
            'median': num.median, 'max': num.max}
  total = found.string_stats.common_stats.num_non_missing or 1
  return {v.value: v.frequency / total for v in found.string_stats.top_values}


def _histogram(stats: statistics_pb2.DatasetFeatureStatisticsList,
               feature: str) -> List[List[float]]:
  """[low, high, share] of each bucket of a numeric feature's standard histogram."""
  found = _feature_stats(stats, feature)
  if found is None or not found.HasField('num_stats'):
    return []
  for histogram in found.num_stats.histograms:
    if histogram.type == statistics_pb2.Histogram.STANDARD:
      total = sum(b.sample_count for b in histogram.buckets) or 1.0
      return [[b.low_value, b.high_value, b.sample_count / total]
              for b in histogram.buckets]
  return []


def compare(current: statistics_pb2.DatasetFeatureStatisticsList,
            served: statistics_pb2.DatasetFeatureStatisticsList,
            schema: schema_pb2.Schema, site: str = '') -> List[FeatureDrift]:
  """TFDV's drift comparators on `current` against `served` (one data set each),
  one entry per feature; `site` names what they hold, '' for the whole data."""
  anomalies = tfdv.validate_statistics(current, schema, previous_statistics=served)
  compared = []
  for info in anomalies.drift_skew_info:
    feature = info.path.step[-1]
    for measurement in info.drift_measurements:
      compared.append(FeatureDrift(
          feature=feature, comparator=_COMPARATORS.get(measurement.type, 'unknown'),
          value=measurement.value, threshold=measurement.threshold,
          served=_distribution(served, feature), new=_distribution(current, feature),
          site=site, served_histogram=_histogram(served, feature),
          new_histogram=_histogram(current, feature)))
  return sorted(compared, key=lambda f: f.feature)


def _slices(stats: statistics_pb2.DatasetFeatureStatisticsList
            ) -> Dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
  """'' (the whole data) and each site -> its statistics, one data set each."""
  found = {}
  for dataset in stats.datasets:
    if dataset.name == tfdv_constants.DEFAULT_SLICE_KEY:
      key = ''
    elif dataset.name.startswith(_SITE_SLICE_PREFIX):
      key = dataset.name[len(_SITE_SLICE_PREFIX):]
    else:
      continue
    found[key] = statistics_pb2.DatasetFeatureStatisticsList(datasets=[dataset])
  return found


def compare_sites(current: statistics_pb2.DatasetFeatureStatisticsList,
                  served: statistics_pb2.DatasetFeatureStatisticsList,
                  schema: schema_pb2.Schema) -> Tuple[List[FeatureDrift], Dict[str, int]]:
  """The whole data's comparison, each site's when either side has several, and
  the sites new to the served data with their images.

  With one site on both sides, a site's comparison is the whole data's again;
  within a site, `site` itself is one value and is not compared.
  """
  now, before = _slices(current), _slices(served)
  compared = compare(now[''], before[''], schema)
  sites_now = sorted(site for site in now if site)
  sites_before = {site for site in before if site}
  if len(sites_now) < 2 and len(sites_before) < 2:
    sites_now = [site for site in sites_now if site not in sites_before]
  new_sites = {}
  for site in sites_now:
    if site in sites_before:
      compared += [f for f in compare(now[site], before[site], schema, site)
                   if f.feature != features_lib.SITE_KEY]
    else:
      new_sites[site] = now[site].datasets[0].num_examples
  return compared, new_sites


def _statistics(pipeline: beam.Pipeline, examples_uri: str, schema: schema_pb2.Schema,
                output_path: str, label: str) -> None:
  records = tfxio.TFExampleRecord(
      file_pattern=os.path.join(examples_uri, f'Split-{_SPLIT}', '*'), schema=schema)
  _ = (pipeline
       | f'Read[{label}]' >> records.BeamSource()
       | f'Statistics[{label}]' >> tfdv.GenerateStatistics(tfdv.StatsOptions(
           schema=schema, experimental_slice_functions=[
               slicing_util.get_feature_value_slicer({features_lib.SITE_KEY: None})]))
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
    drifts, new_sites = compare_sites(tfdv.load_stats_binary(current_path),
                                      tfdv.load_stats_binary(served_path), compared)
    result = DriftResult(policy, str(card.version), drifts, new_sites=new_sites)
  fileio.makedirs(output_uri)
  with fileio.open(os.path.join(output_uri, DRIFT_FILE), 'w') as f:
    f.write(result.to_json())
  return result


def enforce(result: DriftResult) -> None:
  """Raises DataDriftError, one line per drifted feature, on drift under policy 'stop'."""
  if result.drift_lines() and result.policy == 'stop':
    raise DataDriftError(
        f'The data drifted from the data of served version {result.served_version} '
        f'(policy stop); nothing is trained or pushed:\n  '
        + '\n  '.join(result.drift_lines()))


@tfx.dsl.components.component(use_beam=True)
def DataDriftCheck(  # pylint: disable=invalid-name
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    drift: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    served_model_dir: tfx.dsl.components.Parameter[str],
    policy: tfx.dsl.components.Parameter[str],
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[beam.Pipeline] = None,
) -> None:
  """Writes drift.json and logs its summary; raises DataDriftError on drift under 'stop'.

  The log is where an orchestrator without the local run summary (Kubeflow)
  shows drift under policy 'warn'.
  """
  if policy not in configs.DRIFT_POLICIES:
    raise ValueError(f'DataDriftCheck: policy must be one of '
                     f'{", ".join(configs.DRIFT_POLICIES)}, got {policy!r}')
  parsed = io_utils.parse_pbtxt_file(os.path.join(schema.uri, _SCHEMA_FILE),
                                     schema_pb2.Schema())
  result = check(examples.uri, parsed, served_model_dir, policy, drift.uri, beam_pipeline)
  logging.info('DataDriftCheck: %s', '\n'.join(result.summary_lines()))
  enforce(result)
