"""An OpenAI-compatible /v1/chat/completions server on 127.0.0.1 for the judge tests.

It answers EMT's yes/no prompt by a rule (yes when the label's words appear in the prediction) and
can inject 429s, 500s and slow replies. Every request is recorded, so tests can check exactly what
was sent. It only ever listens on the loopback address.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROMPT_RE = re.compile(r"Label: (?P<label>.*); Prediction: (?P<pred>.*)\.$", re.S)


class FakeOpenAI:
    def __init__(self):
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.plan: list[str] = []  # per request, in order: "429", "500", "401", "slow", or "ok"
        self.slow_seconds = 1.0  # at most: a "slow" reply waits until the client has given up and the test ends
        self.release = threading.Event()  # set on exit, so no test sleeps the full slow_seconds
        self.fail_after: int | None = None  # answer 500 to every request after this many
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real API servers do
            def log_message(self, *a):
                pass

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
                if action == "401":  # as the real API does, the refusal quotes the key it was given
                    key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    self._send(401, {"error": {"message": f"Incorrect API key provided: {key}.",
                                               "type": "invalid_request_error", "code": "invalid_api_key"}})
                    return
                if action in ("429", "500"):
                    self._send(int(action), {"error": {"message": "injected", "type": "server_error"}})
                    return
                m = PROMPT_RE.search(body["messages"][0]["content"])
                label, pred = m.group("label").lower(), m.group("pred").lower()
                reply = "Yes." if label and label in pred else "No."
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
