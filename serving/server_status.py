"""What a running TF Serving says it serves, read over its REST API (standard library only).

Two questions, answered as TF Serving 2.16.1 answers them:

* Is version N loaded? `GET /v1/models/NAME/versions/N` is the model status API
  (`model_servers/get_model_status_impl.cc`): `model_version_status[0].state`
  is `AVAILABLE` once the version serves; a version the server has not seen yet
  is 404 "Could not find version N of model NAME".
* Which version does a label name? Not the status API: for a label it answers
  with every version (`GetModelStatusWithModelSpec` looks only at
  `model_spec.version`). The metadata API resolves the label to a servable
  (`servables/tensorflow/get_model_metadata_impl.cc`, `SavedModelGetSignatureDef`
  sets `model_spec.version` from the handle), so
  `GET /v1/models/NAME/labels/L/metadata` gives `model_spec.version`. A label
  the server has not accepted is 400 "Unrecognized servable version label"
  (`server_core.cc`, `GetModelVersionForLabel`, INVALID_ARGUMENT).
"""

import dataclasses
import json
import time
import urllib.error
import urllib.request
from typing import Callable, Optional, Tuple

AVAILABLE = 'AVAILABLE'


class ServerError(Exception):
  """The server could not be reached, or answered something other than TF Serving's JSON."""


@dataclasses.dataclass(frozen=True)
class VersionStatus:
  state: str            # START, LOADING, AVAILABLE, UNLOADING, END
  error: str            # why a version ended without loading; '' when it is fine


class ServerStatus:
  """The status and label questions for one model on one TF Serving."""

  def __init__(self, server: str, model_name: str, timeout_s: float = 10.0):
    self.server = server.rstrip('/')
    self.model_url = f'{self.server}/v1/models/{model_name}'
    self._timeout_s = timeout_s

  def _get(self, path: str, absent: Tuple[int, ...]) -> Optional[dict]:
    """The JSON body of `model_url/path`; None where the server answers one of `absent`."""
    url = f'{self.model_url}/{path}'
    try:
      with urllib.request.urlopen(url, timeout=self._timeout_s) as response:
        return json.load(response)
    except urllib.error.HTTPError as error:
      try:
        body = json.load(error)
      except ValueError:
        raise ServerError(f'{url} answered {error.code} without TF Serving\'s '
                          'JSON error body') from None
      if error.code in absent:
        return None
      raise ServerError(f'{url}: {error.code} {body.get("error", "")}') from None
    except (urllib.error.URLError, OSError, ValueError) as error:
      raise ServerError(f'cannot read {url}: {getattr(error, "reason", error)}') from None

  def version_status(self, version: int) -> Optional[VersionStatus]:
    """The state of a version the server knows; None before it does."""
    body = self._get(f'versions/{version}', absent=(404,))
    if body is None:
      return None
    status = body['model_version_status'][0]
    return VersionStatus(state=status['state'],
                         error=status.get('status', {}).get('error_message', ''))

  def label_version(self, label: str) -> Optional[int]:
    """The version the server resolves `label` to; None while it has no such label."""
    body = self._get(f'labels/{label}/metadata', absent=(400, 404))
    return None if body is None else int(body['model_spec']['version'])


def wait_for(condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.2) -> bool:
  """True as soon as `condition()` holds; False once `timeout_s` has passed without."""
  deadline = time.monotonic() + timeout_s
  while True:
    if condition():
      return True
    if time.monotonic() >= deadline:
      return False
    time.sleep(poll_s)
