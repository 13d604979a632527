"""TF Serving's REST predict endpoint in front of a loaded SavedModel, for tests.

It speaks the request and reply formats TF Serving documents for
POST /v1/models/NAME:predict (row format, `{"b64": ...}` for binary inputs) and
answers by calling the model's signature, so a client tested against it talks
to the real graph.
"""

import base64
import contextlib
import http.server
import json
import threading

import tensorflow as tf


def _decode(value):
  return base64.b64decode(value['b64']) if isinstance(value, dict) else value


def _instances_to_inputs(instances, input_name: str):
  """Row format: bare values when the signature has one input, else dicts by name."""
  return [_decode(row[input_name] if isinstance(row, dict) and input_name in row
                  else row) for row in instances]


def _rows(outputs):
  names = sorted(outputs)
  values = {name: outputs[name].numpy().tolist() for name in names}
  return [{name: _to_json(values[name][i]) for name in names}
          for i in range(len(values[names[0]]))]


def _to_json(value):
  if isinstance(value, bytes):
    return value.decode()
  if isinstance(value, list):
    return [_to_json(v) for v in value]
  return value


@contextlib.contextmanager
def serving(saved_model, model_name: str):
  """Serves `saved_model`'s signatures on 127.0.0.1; yields the base URL."""
  path = f'/v1/models/{model_name}:predict'

  class Handler(http.server.BaseHTTPRequestHandler):

    def do_POST(self):  # pylint: disable=invalid-name
      if self.path != path:
        self._reply(404, {'error': f'Servable not found for request: '
                                   f'Latest({self.path.split("/")[-1]})'})
        return
      request = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
      signature = saved_model.signatures[request.get('signature_name',
                                                     'serving_default')]
      input_name = next(iter(signature.structured_input_signature[1]))
      inputs = _instances_to_inputs(request['instances'], input_name)
      try:
        outputs = signature(**{input_name: tf.constant(inputs)})
      except tf.errors.InvalidArgumentError as error:
        self._reply(400, {'error': error.message})
        return
      self._reply(200, {'predictions': _rows(outputs)})

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
