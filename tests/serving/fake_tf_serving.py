"""A TF Serving 2.16.1 stand-in: its config poll, its label rule and its REST API.

Derived from the source of tensorflow/serving at tag 2.16.1 (paths below are
under `tensorflow_serving/`), not from its documentation, and calling the
models' real signatures, so a client tested against it talks to the real graph.

The server core (`model_servers/server.cc`, `model_servers/server_core.cc`):

* every poll reads `models.config`; a file that does not parse is logged and the
  old config stays (`Server::PollFilesystemAndReloadConfig`);
* `ServerCore::ReloadConfig` applies the labels first
  (`UpdateModelVersionLabelMap`): a label may name a version that is not
  AVAILABLE only if the label is new or already names that version, and only
  with `--allow_version_labels_for_unavailable_models`; otherwise the whole
  reload fails with FAILED_PRECONDITION "Request to assign label to version N
  of model M, which is not currently available for inference", before any new
  version is loaded (`AddModelsViaModelConfigList` is not reached);
* the listed versions then load (LOADING -> AVAILABLE, here after
  `load_delay_s`), and versions no longer listed unload (END). A version that
  fails to load ends in END with its error.

The REST API (`model_servers/http_rest_api_util.cc`, `http_rest_api_handler.cc`,
`http_server.cc`):

* paths match `kPredictionApiGegex` (POST) and `kModelStatusApiRegex` (GET),
  both case-insensitive (`(?i)`); any other path under `/v1/` is 400
  "Malformed request: METHOD PATH", a path outside `/v1/` is 404 with no body
  (`EvHTTPServer` finds no handler);
* status codes from `ToHTTPStatusCode` (`http_server.cc`): INVALID_ARGUMENT and
  FAILED_PRECONDITION 400, NOT_FOUND 404; error bodies `{"error": message}`
  (`MakeJsonFromStatus`, `util/json_tensor.cc`);
* a label resolves through the label map (`ServerCore::GetModelVersionForLabel`):
  an unknown one is 400 "Unrecognized servable version label: L"; a version not
  loaded is 404 "Servable not found for request: Specific(M, N)";
* model status (`model_servers/get_model_status_impl.cc`) answers one version
  for `/versions/N` (404 "Could not find version N of model M" when unknown)
  and every version otherwise, also for `/labels/L`: the status API ignores the
  label. `/metadata` resolves version or label to a servable and returns its
  `model_spec` with that version (`servables/tensorflow/get_model_metadata_impl.cc`);
* Predict requests (`util/json_tensor.cc`, `FillPredictRequestFromJson`): exactly
  one of `instances` (non-empty list: "No values in 'instances' array") or
  `inputs`; values typed by the signature's input dtype ("... is not of
  expected type: string"); a single output is answered as bare values, more as
  objects (`MakeRowFormatJsonFromTensors`);
* Classify and Regress (`servables/tensorflow/classifier.cc`, `regressor.cc`):
  the signature must have one input named `inputs` and `classes`/`scores`
  (classify) or `outputs` (regress); this project exports no such signature, so
  the stand-in answers those checks and goes no further (501 past them).
"""

import base64
import contextlib
import dataclasses
import http.server
import json
import os
import re
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional

from google.protobuf import text_format
import tensorflow as tf
from tensorflow_serving.config import model_server_config_pb2

from contracts import serving as serving_contract

_PREDICTION_PATH = re.compile(
    r'/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?'
    r':(classify|regress|predict)', re.IGNORECASE)
_STATUS_PATH = re.compile(
    r'/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?'
    r'(?:/(metadata))?', re.IGNORECASE)
_HANDLED_PATH = re.compile(r'/v1/.*', re.IGNORECASE)   # kHTTPRestApiHandlerPathRegex

LOADING, AVAILABLE, END = 'LOADING', 'AVAILABLE', 'END'
_TF_TYPES = {tf.string: 'string', tf.float32: 'float', tf.int64: 'int64', tf.int32: 'int32'}


class _Status(Exception):
  """A TF Serving Status that is not OK, with its HTTP code (`ToHTTPStatusCode`)."""

  def __init__(self, http_status: int, message: str):
    super().__init__(message)
    self.http_status = http_status


def _invalid(message: str) -> _Status:
  return _Status(400, message)


def _not_found(message: str) -> _Status:
  return _Status(404, message)


@dataclasses.dataclass
class _Version:
  state: str
  ready_at: float = 0.0
  model: object = None
  error: str = ''


class TfServing:
  """One model on a stand-in ModelServer; `url` is its REST address."""

  def __init__(self, model_name: str, load: Callable[[str], object],
               model_base_dir: Optional[str] = None, poll_s: float = 0.05,
               load_delay_s: float = 0.2,
               allow_version_labels_for_unavailable_models: bool = True):
    self.model_name = model_name
    self._load = load
    self._base = model_base_dir
    self._poll_s = poll_s
    self._load_delay_s = load_delay_s
    self._allow_unavailable = allow_version_labels_for_unavailable_models
    self._lock = threading.RLock()
    self.versions: Dict[int, _Version] = {}
    self.labels: Dict[str, int] = {}
    # What the server did, for tests: every label map it accepted, every refusal.
    self.label_history: List[Dict[str, int]] = []
    self.refusals: List[str] = []
    self.url = ''

  # ---- the server core ----------------------------------------------------

  def serve_loaded(self, models: Mapping[int, object], labels: Mapping[str, int]) -> None:
    """Versions already AVAILABLE under `labels`: a server some time after its last change."""
    with self._lock:
      self.versions = {v: _Version(AVAILABLE, model=m) for v, m in models.items()}
      self._set_labels(dict(labels))

  def _set_labels(self, labels: Dict[str, int]) -> None:
    if labels != self.labels or not self.label_history:
      self.label_history.append(dict(labels))
    self.labels = labels

  def _config_path(self) -> str:
    return os.path.join(os.path.dirname(self._base.rstrip('/')),
                        serving_contract.MODELS_CONFIG_FILE)

  def poll(self) -> None:
    """One tick: versions finish loading, then the config file is re-read."""
    with self._lock:
      now = time.monotonic()
      for number, version in self.versions.items():
        if version.state == LOADING and now >= version.ready_at:
          try:
            version.model = self._load(os.path.join(self._base, str(number)))
            version.state = AVAILABLE
          except (OSError, ValueError, tf.errors.OpError) as error:
            version.state, version.error = END, str(error).splitlines()[0]
      config = model_server_config_pb2.ModelServerConfig()
      try:
        with open(self._config_path(), encoding='utf-8') as f:
          text_format.Parse(f.read(), config)
      except (OSError, text_format.ParseError) as error:
        self.refusals.append(f'Failed to read ModelServerConfig file: {error}')
        return
      try:
        self.reload_config(config)
      except _Status as error:
        self.refusals.append(f'PollFilesystemAndReloadConfig failed to ReloadConfig: {error}')

  def reload_config(self, config: model_server_config_pb2.ModelServerConfig) -> None:
    """`ServerCore::ReloadConfig` for this model: labels first, then versions."""
    [model] = [m for m in config.model_config_list.config if m.name == self.model_name]
    labels = {}
    for label, version in model.version_labels.items():
      allowed = self._allow_unavailable and self.labels.get(label, version) == version
      state = self.versions.get(version)
      if not allowed and (state is None or state.state != AVAILABLE):
        raise _Status(400, f'Request to assign label to version {version} of model '
                           f'{self.model_name}, which is not currently available for '
                           'inference')
      labels[label] = version
    self._set_labels(labels)
    listed = set(model.model_version_policy.specific.versions)
    for number in listed:   # a version that failed to load stays END while listed
      known = self.versions.get(number)
      if known is None or (known.state == END and not known.error):
        self.versions[number] = _Version(
            LOADING, ready_at=time.monotonic() + self._load_delay_s)
    for number, version in self.versions.items():
      if number not in listed and version.state != END:
        version.state, version.model, version.error = END, None, ''

  def poll_until(self, stop: threading.Event) -> None:
    """The config poll loop (`--model_config_file_poll_wait_seconds`), every `poll_s`."""
    while not stop.wait(self._poll_s):
      self.poll()

  # ---- requests -----------------------------------------------------------

  def _resolve(self, name: str, version: Optional[str], label: Optional[str]) -> int:
    """`ServerCore::ServableRequestFromModelSpec` and the manager's handle lookup."""
    if name != self.model_name:
      raise _not_found(f'Servable not found for request: Latest({name})')
    if label is not None:
      if label not in self.labels:
        raise _invalid(f'Unrecognized servable version label: {label}')
      number = self.labels[label]
    elif version is not None:
      number = int(version)
    else:
      available = [v for v, s in self.versions.items() if s.state == AVAILABLE]
      if not available:
        raise _not_found(f'Servable not found for request: Latest({name})')
      return max(available)
    if self.versions.get(number, _Version(END)).state != AVAILABLE:
      raise _not_found(f'Servable not found for request: Specific({name}, {number})')
    return number

  def _status(self, name: str, version: Optional[str]) -> dict:
    """`GetModelStatusImpl::GetModelStatusWithModelSpec`: a label is not looked at."""
    def entry(number: int, state: _Version) -> dict:
      return {'version': str(number), 'state': state.state,
              'status': {'error_code': 'UNKNOWN' if state.error else 'OK',
                         'error_message': state.error}}
    known = {n: s for n, s in self.versions.items()} if name == self.model_name else {}
    if version is not None:
      if int(version) not in known:
        raise _not_found(f'Could not find version {version} of model {name}')
      return {'model_version_status': [entry(int(version), known[int(version)])]}
    if not known:
      raise _not_found(f'Could not find any versions of model {name}')
    return {'model_version_status': [entry(n, s) for n, s in sorted(known.items())]}

  def _metadata(self, number: int) -> dict:
    signatures = {}
    for key, function in self.versions[number].model.signatures.items():
      signatures[key] = {
          'inputs': {n: {'dtype': f'DT_{_TF_TYPES.get(s.dtype, s.dtype.name).upper()}',
                         'name': n} for n, s in function.structured_input_signature[1].items()},
          'outputs': {n: {'name': n} for n in function.structured_outputs},
      }
    return {'model_spec': {'name': self.model_name, 'signature_name': '',
                           'version': str(number)},
            'metadata': {'signature_def': {'signature_def': signatures}}}

  def _signature(self, number: int, name: str):
    signature = self.versions[number].model.signatures.get(name)
    if signature is None:
      raise _invalid(f'Serving signature name: "{name}" not found in signature def')
    return signature

  def _predict(self, number: int, request: dict) -> dict:
    """`FillPredictRequestFromJson`, the signature call and `MakeJsonFromTensors`."""
    signature = self._signature(number, request.get('signature_name') or 'serving_default')
    specs = signature.structured_input_signature[1]
    has_instances, has_inputs = 'instances' in request, 'inputs' in request
    if has_instances and has_inputs:
      raise _invalid(f'JSON Value: {json.dumps(request)} Not formatted correctly expecting '
                     "only one of 'inputs' or 'instances' keys to exist ")
    if not has_instances and not has_inputs:
      raise _invalid("Missing 'inputs' or 'instances' key")
    if has_instances:
      rows = request['instances']
      if not isinstance(rows, list):
        raise _invalid(f"JSON Value: {json.dumps(request)} Expecting 'instances' to be an "
                       'list/array')
      if not rows:
        raise _invalid(f"JSON Value: {json.dumps(request)} No values in 'instances' array")
      named = isinstance(rows[0], dict) and set(rows[0]) != {'b64'}
      if not named and len(specs) > 1:
        raise _invalid('instances is a plain list, but expecting list of objects as '
                       'multiple input tensors required as per tensorinfo_map')
      columns = ({n: [row.get(n) for row in rows] for n in specs} if named
                 else {next(iter(specs)): rows})
    else:
      inputs = request['inputs']
      columns = (inputs if isinstance(inputs, dict) and set(inputs) != {'b64'}
                 else {next(iter(specs)): inputs})
      missing = [n for n in specs if n not in columns]
      if missing:
        raise _invalid(f"Missing named input: {missing[0]} in 'inputs' object.")
    tensors = {n: tf.constant(_typed(columns[n], spec.dtype), dtype=spec.dtype)
               for n, spec in specs.items()}
    try:
      outputs = signature(**tensors)
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
      raise _invalid(getattr(error, 'message', str(error))) from None
    values = {n: _json_values(outputs[n].numpy().tolist()) for n in sorted(outputs)}
    if has_inputs:
      return {'outputs': values if len(values) > 1 else next(iter(values.values()))}
    count = len(next(iter(values.values())))
    if len(values) == 1:
      return {'predictions': next(iter(values.values()))}
    return {'predictions': [{n: values[n][i] for n in values} for i in range(count)]}

  def _classify_or_regress(self, number: int, method: str, request: dict) -> dict:
    """`PreProcessClassification` / `PreProcessRegression` on the named signature."""
    name = request.get('signature_name') or 'serving_default'
    signature = self.versions[number].model.signatures.get(name)
    if signature is None:
      raise _invalid(f'No signature was found with the name: {name}')
    inputs = signature.structured_input_signature[1]
    if len(inputs) != 1:
      raise _invalid('Expected one input Tensor.')
    if 'inputs' not in inputs:
      raise _invalid(f'No {"classification" if method == "classify" else "regression"} '
                     'inputs found in SignatureDef')
    raise _Status(501, f'the stand-in does not run {method}')

  def handle(self, method: str, path: str, body: bytes) -> tuple:
    """(HTTP status, JSON body or None) for one request, as `ProcessRequest` answers it."""
    if not _HANDLED_PATH.fullmatch(path):
      return 404, None
    with self._lock:
      try:
        return 200, self._dispatch(method, path, body)
      except _Status as error:
        return error.http_status, {'error': str(error)}

  def _dispatch(self, method: str, path: str, body: bytes) -> dict:
    match = (_PREDICTION_PATH if method == 'POST' else _STATUS_PATH).fullmatch(path)
    if match is None or method not in ('POST', 'GET'):
      raise _invalid(f'Malformed request: {method} {path}')
    name, version, label, verb = match.groups()
    if method == 'GET':
      if not name:
        raise _invalid('Missing model name in request.')
      if verb:
        return self._metadata(self._resolve(name, version, label))
      return self._status(name, version)
    try:
      request = json.loads(body) if body else None
    except ValueError as error:
      raise _invalid(f'JSON Parse error: {error}') from None
    if request is None:
      raise _invalid('JSON Parse error: The document is empty')
    if not isinstance(request, dict):
      raise _invalid(f'JSON Value: {json.dumps(request)} Is not object')
    number = self._resolve(name, version, label)
    if verb.lower() == 'predict':
      return self._predict(number, request)
    return self._classify_or_regress(number, verb.lower(), request)


def _typed(values, dtype: tf.DType):
  """JSON values as the signature's input type (`FillTensorProto`, `TypeError`)."""
  if isinstance(values, list):
    return [_typed(v, dtype) for v in values]
  if isinstance(values, dict) and set(values) == {'b64'}:
    if dtype != tf.string:
      raise _invalid(f'JSON Value: {json.dumps(values)} not formatted correctly for '
                     'base64 data')
    return base64.b64decode(values['b64'])
  expected = _TF_TYPES.get(dtype, dtype.name)
  if dtype == tf.string and not isinstance(values, str):
    raise _invalid(f'JSON Value: {json.dumps(values)} Type: {type(values).__name__} is '
                   f'not of expected type: {expected}')
  if dtype != tf.string and (isinstance(values, (str, bool)) or values is None):
    raise _invalid(f'JSON Value: {json.dumps(values)} Type: {type(values).__name__} is '
                   f'not of expected type: {expected}')
  return values


def _json_values(value):
  if isinstance(value, bytes):
    return value.decode()
  if isinstance(value, list):
    return [_json_values(v) for v in value]
  return value


@contextlib.contextmanager
def _listening(server: TfServing):
  class Handler(http.server.BaseHTTPRequestHandler):

    def _answer(self):
      body = self.rfile.read(int(self.headers.get('Content-Length', 0) or 0))
      status, reply = server.handle(self.command, self.path, body)
      data = json.dumps(reply).encode() if reply is not None else b''
      self.send_response(status)
      self.send_header('Content-Type', 'application/json')
      self.send_header('Content-Length', str(len(data)))
      self.end_headers()
      self.wfile.write(data)

    do_GET = do_POST = do_PUT = _answer  # noqa: N815  pylint: disable=invalid-name

    def log_message(self, *args):  # pylint: disable=arguments-differ
      del args  # keep test output quiet

  httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  server.url = f'http://127.0.0.1:{httpd.server_address[1]}'
  try:
    yield server
  finally:
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@contextlib.contextmanager
def serving(models, model_name: str, labels: Optional[Mapping[str, int]] = None,
            version: int = 1):
  """Loaded models (one, or version -> one), all AVAILABLE, under `labels`; yields the URL."""
  versions = dict(models) if isinstance(models, Mapping) else {version: models}
  server = TfServing(model_name, load=lambda path: None)
  server.serve_loaded(versions, labels or {})
  with _listening(server) as running:
    yield running.url


@contextlib.contextmanager
def watching(model_base_dir: str, load: Callable[[str], object], poll_s: float = 0.05,
             load_delay_s: float = 0.2):
  """A server started on the serving directory's `models.config`, polling it; yields it.

  As at startup (`ServerCore::Create` -> `ReloadConfig`), the first config must
  be accepted, or the server does not start.
  """
  server = TfServing(os.path.basename(model_base_dir.rstrip('/')), load,
                     model_base_dir, poll_s, load_delay_s)
  server.poll()
  if server.refusals:
    raise RuntimeError(f'the server did not start: {server.refusals[-1]}')
  stop = threading.Event()
  poller = threading.Thread(target=server.poll_until, args=(stop,), daemon=True)
  poller.start()
  try:
    with _listening(server) as running:
      yield running
  finally:
    stop.set()
    poller.join()
