"""A local HTTP endpoint that records the JSON bodies POSTed to it (an alert webhook)."""

import http.server
import json
import threading
from typing import Any, Dict, List


class FakeWebhook:
  """Serves on 127.0.0.1 in a thread; `posts` lists the JSON bodies received.

  It answers `status` (200 unless set otherwise).
  """

  def __init__(self, status: int = 200):
    self.posts: List[Dict[str, Any]] = []
    self.status = status
    self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), self._handler())
    self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

  @property
  def url(self) -> str:
    return f'http://127.0.0.1:{self._server.server_address[1]}/hooks/alert'

  def _handler(self):
    webhook = self

    class Handler(http.server.BaseHTTPRequestHandler):

      def do_POST(self):  # pylint: disable=invalid-name
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        webhook.posts.append({'path': self.path,
                              'content_type': self.headers.get('Content-Type'),
                              'json': json.loads(body)})
        self.send_response(webhook.status)
        self.end_headers()

      def log_message(self, *args):
        pass

    return Handler

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._server.shutdown()
    self._server.server_close()
