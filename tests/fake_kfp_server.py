"""A stand-in for the Kubeflow Pipelines REST API (v2beta1) that records every request.

It keeps just enough state for the kfp SDK client's upload/run/schedule calls:
pipelines by name, their versions, experiments. Answers are the smallest JSON
the SDK's generated models accept.
"""

import dataclasses
import email.parser
import email.policy
import http.server
import json
import threading
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

API = '/apis/v2beta1'


@dataclasses.dataclass
class Request:
  method: str
  path: str
  query: Dict[str, str]
  json: Optional[Dict[str, Any]] = None
  files: Dict[str, bytes] = dataclasses.field(default_factory=dict)
  headers: Dict[str, str] = dataclasses.field(default_factory=dict)  # lower-case names


def _multipart_files(content_type: str, body: bytes) -> Dict[str, bytes]:
  message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
      f'Content-Type: {content_type}\r\n\r\n'.encode() + body)
  return {part.get_param('name', header='content-disposition'):
          part.get_payload(decode=True) for part in message.iter_parts()}


class FakeKfpServer:
  """Serves on 127.0.0.1 in a thread; `requests` lists what the client sent."""

  def __init__(self):
    self.requests: List[Request] = []
    self.pipelines: Dict[str, str] = {}           # display name -> id
    self.versions: Dict[str, List[str]] = {}      # pipeline id -> version ids
    # (method, path below the API root) -> (HTTP status, JSON answer) to fail with.
    self.failures: Dict[Tuple[str, str], Tuple[int, Dict[str, Any]]] = {}
    self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), self._handler())
    self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

  @property
  def url(self) -> str:
    return f'http://127.0.0.1:{self._server.server_address[1]}'

  def __enter__(self) -> 'FakeKfpServer':
    self._thread.start()
    return self

  def __exit__(self, *exc_info) -> None:
    self._server.shutdown()
    self._server.server_close()

  def find(self, method: str, path: str) -> List[Request]:
    return [r for r in self.requests if r.method == method and r.path == API + path]

  def _add_version(self, pipeline_id: str) -> str:
    version_id = f'version-{sum(map(len, self.versions.values())) + 1}'
    self.versions.setdefault(pipeline_id, []).append(version_id)
    return version_id

  def answer(self, request: Request) -> Tuple[int, Dict[str, Any]]:
    route = (request.method, request.path[len(API):])
    if route in self.failures:
      return self.failures[route]
    return 200, self._succeed(request, route)

  def _succeed(self, request: Request, route: Tuple[str, str]) -> Dict[str, Any]:
    if route == ('GET', '/healthz'):
      return {'multi_user': False}
    if route == ('GET', '/pipelines'):
      name = json.loads(request.query['filter'])['predicates'][0]['stringValue']
      if name not in self.pipelines:
        return {}
      return {'pipelines': [{'pipeline_id': self.pipelines[name], 'display_name': name}],
              'total_size': 1}
    if route == ('POST', '/pipelines/upload'):
      pipeline_id = f'pipeline-{len(self.pipelines) + 1}'
      self.pipelines[request.query['name']] = pipeline_id
      self._add_version(pipeline_id)
      return {'pipeline_id': pipeline_id, 'display_name': request.query['name']}
    if route == ('POST', '/pipelines/upload_version'):
      pipeline_id = request.query['pipelineid']
      return {'pipeline_id': pipeline_id, 'display_name': request.query['name'],
              'pipeline_version_id': self._add_version(pipeline_id)}
    if request.method == 'GET' and route[1].endswith('/versions'):
      pipeline_id = route[1].split('/')[2]
      return {'pipeline_versions': [
          {'pipeline_id': pipeline_id, 'pipeline_version_id': version_id}
          for version_id in reversed(self.versions[pipeline_id])]}
    if route == ('GET', '/experiments'):
      return {}
    if route == ('POST', '/experiments'):
      return {'experiment_id': 'experiment-1', **request.json}
    if route == ('POST', '/runs'):
      return {'run_id': f'run-{len(self.find("POST", "/runs"))}'}
    if route == ('POST', '/recurringruns'):
      return {'recurring_run_id': f'recurring-run-{len(self.find("POST", "/recurringruns"))}'}
    raise KeyError(f'the fake KFP server does not know {route}')

  def _handler(self):
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):

      def _serve(self):
        url = urllib.parse.urlsplit(self.path)
        request = Request(self.command, url.path, dict(urllib.parse.parse_qsl(url.query)),
                          headers={k.lower(): v for k, v in self.headers.items()})
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        content_type = self.headers.get('Content-Type', '')
        if content_type.startswith('multipart/form-data'):
          request.files = _multipart_files(content_type, body)
        elif body:
          request.json = json.loads(body)
        server.requests.append(request)
        try:
          status, answer = server.answer(request)
        except KeyError as e:
          status, answer = 404, {'error': str(e)}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

      do_GET = do_POST = _serve

      def log_message(self, *args):
        pass

    return Handler
