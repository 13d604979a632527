"""TF Serving's REST API in front of loaded SavedModels, for tests.

It answers the requests TF Serving documents (tensorflow_serving/g3doc/api_rest.md)
by calling the models' signatures, so a client tested against it talks to
the real graph:

* `GET /v1/models/NAME`, `.../versions/N`, `.../labels/L`: model status,
  `{"model_version_status": [{"version": "N", "state": "AVAILABLE", ...}]}`;
* `POST /v1/models/NAME[/versions/N|/labels/L]:predict` with `signature_name`
  (default `serving_default`) and either `instances` (row format, answered
  with `predictions`) or `inputs` (columnar format, answered with `outputs`);
  binary values as `{"b64": ...}`;
* errors as `{"error": "..."}` with TF Serving's status codes: 404 for an
  unknown model, version or label, 400 for a bad request or input.

Without a version or label a request goes to the highest version, as TF
Serving's does. It listens on 127.0.0.1 only.
"""

import base64
import contextlib
import http.server
import json
import re
import threading
from typing import Dict, Mapping, Optional, Union

import tensorflow as tf

_PATH = re.compile(r'^/v1/models/(?P<name>[^/:]+)'
                   r'(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?'
                   r'(?P<verb>:predict)?$')


class _RequestError(Exception):

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


def _decode(value):
  if isinstance(value, dict) and set(value) == {'b64'}:
    return base64.b64decode(value['b64'])
  if isinstance(value, list):
    return [_decode(v) for v in value]
  return value


def _to_json(value):
  if isinstance(value, bytes):
    return value.decode()
  if isinstance(value, list):
    return [_to_json(v) for v in value]
  return value


def _signature_inputs(signature, request) -> Dict[str, list]:
  """The request's tensors by input name, from either format."""
  input_names = list(signature.structured_input_signature[1])
  if ('instances' in request) == ('inputs' in request):
    raise _RequestError(400, 'JSON Value: must have exactly one of "instances" '
                             '(row format) or "inputs" (columnar format)')
  if 'instances' in request:
    rows = request['instances']
    if not isinstance(rows, list):
      raise _RequestError(400, 'JSON Value: "instances" must be a list')
    if len(input_names) == 1 and not (rows and isinstance(rows[0], dict)
                                      and input_names[0] in rows[0]):
      return {input_names[0]: [_decode(row) for row in rows]}
    return {name: [_decode(row[name]) for row in rows] for name in input_names}
  inputs = request['inputs']
  if not isinstance(inputs, dict):
    if len(input_names) != 1:
      raise _RequestError(400, '"inputs" must name each input of the signature')
    inputs = {input_names[0]: inputs}
  missing = set(input_names) - set(inputs)
  if missing:
    raise _RequestError(400, f'Missing input(s): {sorted(missing)}')
  return {name: _decode(inputs[name]) for name in input_names}


def _status(version: int):
  return {'version': str(version), 'state': 'AVAILABLE',
          'status': {'error_code': 'OK', 'error_message': ''}}


@contextlib.contextmanager
def serving(models: Union[object, Mapping[int, object]], model_name: str,
            labels: Optional[Mapping[str, int]] = None, version: int = 1):
  """Serves the models (a loaded SavedModel, or version -> one); yields the base URL."""
  versions = dict(models) if isinstance(models, Mapping) else {version: models}
  labels = dict(labels or {})

  def resolve(match) -> int:
    name = match.group('name')
    if name != model_name:
      raise _RequestError(404, f'Servable not found for request: Latest({name})')
    if match.group('label'):
      label = match.group('label')
      if label not in labels:
        raise _RequestError(404, f'Unrecognized servable version label: {label}')
      return labels[label]
    if match.group('version'):
      requested = match.group('version')
      if not requested.isdigit() or int(requested) not in versions:
        raise _RequestError(404, f'Servable not found for request: '
                                 f'Specific({name}, {requested})')
      return int(requested)
    return max(versions)

  def predict(version: int, body: bytes):
    try:
      request = json.loads(body)
    except ValueError as error:
      raise _RequestError(400, f'JSON Parse error: {error}') from None
    if not isinstance(request, dict):
      raise _RequestError(400, 'JSON Value: the request must be an object')
    signature_name = request.get('signature_name', 'serving_default')
    signature = versions[version].signatures.get(signature_name)
    if signature is None:
      raise _RequestError(400, f'Serving signature name: "{signature_name}" not found '
                               'in signature def')
    inputs = _signature_inputs(signature, request)
    try:
      outputs = signature(**{name: tf.constant(value) for name, value in inputs.items()})
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
      raise _RequestError(400, getattr(error, 'message', str(error))) from None
    values = {name: _to_json(outputs[name].numpy().tolist()) for name in sorted(outputs)}
    if 'inputs' in request:
      return {'outputs': values}
    count = len(next(iter(values.values())))
    return {'predictions': [{name: values[name][i] for name in values}
                            for i in range(count)]}

  class Handler(http.server.BaseHTTPRequestHandler):

    def _route(self, post: bool):
      match = _PATH.match(self.path)
      try:
        if match is None or bool(match.group('verb')) != post:
          raise _RequestError(404, f'Malformed request: {self.command} {self.path}')
        version = resolve(match)
        if post:
          body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
          self._reply(200, predict(version, body))
        elif match.group('version') or match.group('label'):
          self._reply(200, {'model_version_status': [_status(version)]})
        else:
          self._reply(200, {'model_version_status': [_status(v) for v in sorted(versions)]})
      except _RequestError as error:
        self._reply(error.status, {'error': str(error)})

    def do_GET(self):  # pylint: disable=invalid-name
      self._route(post=False)

    def do_POST(self):  # pylint: disable=invalid-name
      self._route(post=True)

    def _reply(self, status: int, body):
      data = json.dumps(body).encode()
      self.send_response(status)
      self.send_header('Content-Type', 'application/json')
      self.send_header('Content-Length', str(len(data)))
      self.end_headers()
      self.wfile.write(data)

    def log_message(self, *args):  # pylint: disable=arguments-differ
      del args  # keep test output quiet

  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield f'http://127.0.0.1:{server.server_address[1]}'
  finally:
    server.shutdown()
    server.server_close()
    thread.join()
