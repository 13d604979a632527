"""Which Kubeflow Pipelines backend versions run which parts of the compiled package.

Read from the backend's source in kubeflow/pipelines at each tag
(backend/src/v2), not from its changelog:

* Node selector and tolerations of the Kubernetes platform spec: the driver
  reads `tolerations` from 2.1.0 (driver/driver.go, `extendPodSpecPatch`;
  2.0.x has no such field), so every supported version places the Trainer.
* Exit handlers (`taskFinalStatus` inputs): the argo compiler of every version
  before 2.14.0 refuses the run ("task final status not supported yet",
  compiler/argocompiler/dag.go); 2.14.0 resolves them (driver/resolve.go).
* The `executor-logs` output the driver adds to every task from 2.5.0
  (driver/driver.go, PUBLISH_LOGS) needs no compile-time choice: the
  entrypoint drops it before TFX reads the executor input.

2.5.0 is the oldest version this project supports; the compiler refuses what
the chosen version cannot run.
"""

import dataclasses
import re
from typing import Tuple

OLDEST_SUPPORTED = '2.5.0'
# The version the compiled package targets unless told otherwise.
DEFAULT_VERSION = '2.14.0'


@dataclasses.dataclass(frozen=True)
class Feature:
  """A part of the package and the first backend version that runs it."""
  name: str
  minimum: str
  source: str


EXIT_HANDLER = Feature(
    name='exit handler (--alert-webhook)', minimum='2.14.0',
    source='backend/src/v2/compiler/argocompiler/dag.go, backend/src/v2/driver/resolve.go')


class BackendVersionError(ValueError):
  """A version that is not X.Y.Z, older than supported, or too old for a feature."""


def parse_version(text: str) -> Tuple[int, ...]:
  """'2.14.0' -> (2, 14, 0); BackendVersionError for anything older than supported."""
  if not re.fullmatch(r'\d+\.\d+\.\d+', text):
    raise BackendVersionError(f'a KFP backend version is MAJOR.MINOR.PATCH, got {text!r}')
  version = _numbers(text)
  if version < _numbers(OLDEST_SUPPORTED):
    raise BackendVersionError(
        f'KFP {text} is older than the oldest supported backend, {OLDEST_SUPPORTED}')
  return version


def _numbers(text: str) -> Tuple[int, ...]:
  return tuple(int(part) for part in text.split('.'))


def require(feature: Feature, version: str) -> None:
  """BackendVersionError when `version` cannot run `feature`."""
  if parse_version(version) < _numbers(feature.minimum):
    raise BackendVersionError(
        f'KFP {version} cannot run the {feature.name}: it needs {feature.minimum} '
        f'or later ({feature.source})')
