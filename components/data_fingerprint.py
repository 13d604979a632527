"""DataFingerprint: the data's fingerprint as a task output, so that KFP's cache can key on it.

On Kubeflow, ImageExampleGen sees only the data root's path: TFX fingerprints
the files in a pre-cache-check hook that only Vertex AI runs, so with the same
path on every run KFP's cache would hand back the first run's examples for
ever. This cheap first task fingerprints the data as ImageExampleGen's own
driver does (components/image_example_gen/driver.py: every file's name and
the sha256 of its content, the two levels the executor reads) and passes the
fingerprint to ImageExampleGen as a parameter. KFP's cache key holds a task's
resolved parameter values, so ImageExampleGen is served from the cache exactly
when the data is unchanged, and so is every later task whose own inputs are
then unchanged: a scheduled run on the same data, with the same package and
run parameters, runs this task alone. Content, not sizes and modification
times: a file rewritten with the same size, or copied back with its old time,
must change the key, or new images would never be read; hashing BUSI's
109 MB takes about a second.

The one line it logs says whether the data is the very data the served
version was trained on (its model card records ImageExampleGen's fingerprint).
"""

import json
from typing import Sequence

from absl import logging
from tfx import v1 as tfx

from components import served_data
from components.image_example_gen import driver
from contracts import configs

FINGERPRINT_KEY = 'fingerprint'


def sites_parameter(sites: Sequence[configs.Site]) -> str:
  """The named sites as the component's `sites` parameter: JSON [name, root] pairs."""
  return json.dumps([[site.name, site.root] for site in sites])


def fingerprint_of(input_base: str, sites_json: str) -> str:
  """ImageExampleGen's fingerprint of the data it would read."""
  sites = [configs.Site(name, root) for name, root in json.loads(sites_json or '[]')]
  return driver.data_fingerprint(input_base, sites)


def summary_line(fingerprint: str, served_model_dir: str) -> str:
  """The data against the served version's: the one line this task logs."""
  card = served_data.served_card(served_model_dir)
  if card is None:
    return (f'New data: no served version with a model card to compare with; '
            f'ImageExampleGen reads {fingerprint}.')
  if card.data.fingerprint != fingerprint:
    return (f'New data: not what version {card.version} in service was trained on; '
            f'ImageExampleGen reads {fingerprint}.')
  return (f'No new data: version {card.version} in service was trained on this very data '
          f'(run {card.run_id or "unknown"}); KFP\'s cache serves ImageExampleGen and every '
          'later task whose code and configuration are unchanged too, so the same package '
          'with the same run parameters retrains and pushes nothing.')


@tfx.dsl.components.component
def DataFingerprint(  # pylint: disable=invalid-name
    input_base: tfx.dsl.components.Parameter[str],
    sites: tfx.dsl.components.Parameter[str],
    served_model_dir: tfx.dsl.components.Parameter[str],
) -> tfx.dsl.components.OutputDict(fingerprint=str):
  """The fingerprint of `input_base`, or of the named `sites` (`sites_parameter`)."""
  fingerprint = fingerprint_of(input_base, sites)
  logging.info('%s', summary_line(fingerprint, served_model_dir))
  return {FINGERPRINT_KEY: fingerprint}
