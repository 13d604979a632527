"""A stand-in for Vertex AI's REST API (v1) that records the jobs and schedules created.

The SDK (google-cloud-aiplatform, over REST when its endpoint is http://)
POSTs a PipelineJob to .../pipelineJobs and a Schedule to .../schedules; the
answer is the request with a resource name and a state, the least its
generated types accept.

Before it creates a job, `PipelineJob.submit` asks Cloud Storage whether the
pipeline root's bucket exists, a `GET /storage/v1/b/BUCKET` (aiplatform 1.165.1,
pipeline_jobs.py and utils/gcs_utils.py). Pointed here by google-cloud-storage's
STORAGE_EMULATOR_HOST (2.19.0, client.py), that question gets the bucket back at
once, owned by PROJECT_NUMBER, which the SDK then compares with Resource
Manager's number for the project; unanswered, the storage client retries it for
two minutes.
"""

import http.server
import json
import threading
import urllib.parse
from typing import Any, Dict, List, Tuple

# Cloud Storage JSON API's buckets.get, as google-cloud-storage asks it.
_BUCKETS = '/storage/v1/b/'
# The project that owns every bucket here.
PROJECT_NUMBER = '424242424242'


class FakeVertexApi:
  """Serves on 127.0.0.1 in a thread; `created` lists (collection path, body) per POST.

  `buckets_checked` lists the Cloud Storage buckets looked up, in order.
  """

  def __init__(self):
    self.created: List[Tuple[str, Dict[str, Any]]] = []
    self.buckets_checked: List[str] = []
    self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), self._handler())
    self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

  @property
  def endpoint(self) -> str:
    return f'http://127.0.0.1:{self._server.server_address[1]}'

  def _handler(self):
    api = self

    class Handler(http.server.BaseHTTPRequestHandler):

      def do_GET(self):  # pylint: disable=invalid-name
        path = urllib.parse.urlparse(self.path).path
        if not path.startswith(_BUCKETS):
          self.send_error(404)
          return
        bucket = urllib.parse.unquote(path[len(_BUCKETS):])
        api.buckets_checked.append(bucket)
        self._answer({'kind': 'storage#bucket', 'name': bucket, 'projectNumber': PROJECT_NUMBER})

      def do_POST(self):  # pylint: disable=invalid-name
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])) or b'{}')
        collection = urllib.parse.urlparse(self.path).path
        api.created.append((collection, body))
        self._answer(dict(body, name=f'{collection[len("/v1/"):]}/{len(api.created)}',
                          state=('PIPELINE_STATE_PENDING'
                                 if collection.endswith('/pipelineJobs') else 'ACTIVE')))

      def _answer(self, answer: Dict[str, Any]) -> None:
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

      def log_message(self, *args):  # pylint: disable=arguments-differ
        pass

    return Handler

  def __enter__(self) -> 'FakeVertexApi':
    self._thread.start()
    return self

  def __exit__(self, *exc) -> None:
    self._server.shutdown()
    self._server.server_close()
