"""An OpenAI-compatible /v1/chat/completions and /v1/models server on 127.0.0.1 for the judge and
endpoint tests.

It answers EMT's yes/no judge prompt by a rule (yes when the label's words appear in the prediction),
and a user turn with an image (`emt --endpoint`) by `vision_answer` (by default a word derived from the
image and the prompt, with the leading space real servers keep). It can inject 429s, 500s, 401s, 400s,
dropped connections and slow replies. Every request is recorded, so tests can check exactly what was
sent. It only ever listens on the loopback address.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROMPT_RE = re.compile(r"Label: (?P<label>.*); Prediction: (?P<pred>.*)\.$", re.S)


def default_vision_answer(content: list[dict]) -> str:
    """A reply that depends on the image and the text, as a model's does: " word-XXXX." """
    blob = json.dumps(content, sort_keys=True).encode()
    return f" word-{hashlib.sha256(blob).hexdigest()[:4]}."


class FakeOpenAI:
    def __init__(self):
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.plan: list[str] = []  # per request, in order: "429", "500", "401", "400", "drop", "slow", or "ok"
        self.models: list[str] | None = ["fake-vlm"]  # GET /v1/models lists these; None: the route is a 404
        self.delay = 0.0  # seconds every chat reply waits (a kill mid-run in the tests)
        self.vision_answer = default_vision_answer
        self.slow_seconds = 1.0  # at most: a "slow" reply waits until the client has given up and the test ends
        self.release = threading.Event()  # set on exit, so no test sleeps the full slow_seconds
        self.fail_after: int | None = None  # answer 500 to every request after this many
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real API servers do
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models") and server.models is not None:
                    self._send(200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                                                  "owned_by": "test"} for m in server.models]})
                else:
                    self._send(404, {"error": {"message": "not found", "type": "not_found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    n = len(server.requests)
                    action = server.plan.pop(0) if server.plan else "ok"
                    if server.fail_after is not None and n > server.fail_after:
                        action = "500"
                if action == "slow":
                    server.release.wait(server.slow_seconds)
                elif server.delay:
                    server.release.wait(server.delay)
                if action == "drop":  # the connection closes without a reply
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if action == "400":  # as vLLM answers an image sent to a text-only model
                    self._send(400, {"error": {"message": "fake-vlm is not a multimodal model",
                                               "type": "BadRequestError", "code": 400}})
                    return
                if action == "401":  # as the real API does, the refusal quotes the key it was given
                    key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    self._send(401, {"error": {"message": f"Incorrect API key provided: {key}.",
                                               "type": "invalid_request_error", "code": "invalid_api_key"}})
                    return
                if action in ("429", "500"):
                    self._send(int(action), {"error": {"message": "injected", "type": "server_error"}})
                    return
                content = body["messages"][0]["content"]
                if isinstance(content, list):  # a user turn with an image: emt --endpoint
                    self._reply(n, body, server.vision_answer(content))
                    return
                m = PROMPT_RE.search(content)
                label, pred = m.group("label").lower(), m.group("pred").lower()
                self._reply(n, body, "Yes." if label and label in pred else "No.")

            def _reply(self, n, body, reply):
                self._send(200, {"id": f"c{n}", "object": "chat.completion", "created": 0, "model": body["model"],
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": reply}}],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

            def _send(self, code, obj):
                data = json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away: fine

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
