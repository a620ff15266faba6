"""A scripted OpenAI-compatible HTTP server for the LLM agent's tests.

Serves ``POST /v1/chat/completions`` (and ``GET /v1/models``) on 127.0.0.1 in
a thread, with the stdlib's ``http.server``. What it answers is decided per
request by a *script*:

- ``server.queue(model, *actions)``: the next requests for ``model`` get these
  actions in order (then the responder);
- ``server.responder = fn(request_json) -> action``: everything else.

An action is a string (the assistant's text), or an `Action` with a status
code (429, 500, ...), a delay in seconds (slow responses, timeouts), usage
fields (or none), extra headers, a finish reason ("length": a truncated
answer), or a raw body (malformed responses).
Every request is kept in ``server.requests`` (model, messages, seed, ...).

Load and outages:

- ``server.latency = 10.0``: every answer takes that long (a model's latency);
- ``server.burst(seconds, status=429, headers=None, model=None)``: every
  request in the next ``seconds`` gets that status (a rate-limit burst or an
  outage), then the script resumes; ``server.refused`` counts them;
- ``server.in_flight`` / ``server.max_in_flight``: requests being answered
  now / at most at once (``max_in_flight_by[model]`` per model).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Union


@dataclass
class Action:
    text: str = ""
    status: int = 200
    delay: float = 0.0
    usage: Optional[dict] = field(default_factory=lambda: {"prompt_tokens": 100, "completion_tokens": 20})
    headers: dict = field(default_factory=dict)
    raw: Optional[bytes] = None       # send these bytes as the body instead of a completion
    finish_reason: str = "stop"       # "length": the answer was cut at the token limit


def text(t: str, **kw) -> Action:
    return Action(t, **kw)


def status(code: int, **kw) -> Action:
    return Action("", status=code, **kw)


ActionLike = Union[str, Action]


class FakeOpenAIServer:
    def __init__(self, responder: Optional[Callable[[dict], ActionLike]] = None):
        self.responder = responder or (lambda req: "OK")
        self.requests: list[dict] = []
        self._queues: dict[str, list[ActionLike]] = {}
        self._lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.latency = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.max_in_flight_by: dict[str, int] = {}
        self._in_flight_by: dict[str, int] = {}
        self._burst: Optional[tuple] = None     # (until, status, headers, model)
        self.refused = 0

    def burst(self, seconds: float, status: int = 429, headers: Optional[dict] = None,
              model: Optional[str] = None) -> None:
        """Refuse every request (of ``model``, or all) with ``status`` for ``seconds``."""
        with self._lock:
            self._burst = (time.monotonic() + seconds, status, dict(headers or {}), model)

    def _bursting(self, req: dict) -> Optional[Action]:
        with self._lock:
            b = self._burst
            if b is None:
                return None
            until, code, headers, model = b
            if time.monotonic() >= until:
                self._burst = None
                return None
            if model is not None and req.get("model") != model:
                return None
            self.refused += 1
        return Action(f"scripted {code} burst", status=code, usage=None, headers=headers)

    # -- script -----------------------------------------------------------
    def queue(self, model: str, *actions: ActionLike) -> None:
        with self._lock:
            self._queues.setdefault(model, []).extend(actions)

    def hits(self, model: Optional[str] = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if model is None or r.get("model") == model)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._queues.clear()
            self.latency = 0.0
            self.max_in_flight = 0
            self.max_in_flight_by.clear()
            self._burst = None
            self.refused = 0

    def _next(self, req: dict) -> Action:
        with self._lock:
            q = self._queues.get(req.get("model"))
            a = q.pop(0) if q else None
        if a is None:
            a = self.responder(req)
        return a if isinstance(a, Action) else Action(str(a))

    # -- server -------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def model_url(self, model: str) -> str:
        return f"{self.base_url}::{model}"

    def start(self) -> "FakeOpenAIServer":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _send(self, code: int, body: bytes, headers: Optional[dict] = None):
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, str(v))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, json.dumps({"object": "list", "data": []}).encode())
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                try:
                    req = json.loads(raw)
                except ValueError:
                    self._send(400, b'{"error": {"message": "bad json"}}')
                    return
                req["_auth"] = self.headers.get("Authorization")
                model = req.get("model", "")
                with outer._lock:
                    outer.requests.append(req)
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                    outer._in_flight_by[model] = outer._in_flight_by.get(model, 0) + 1
                    outer.max_in_flight_by[model] = max(outer.max_in_flight_by.get(model, 0),
                                                        outer._in_flight_by[model])
                try:
                    self._answer(req)
                finally:
                    with outer._lock:
                        outer.in_flight -= 1
                        outer._in_flight_by[model] -= 1

            def _answer(self, req):
                a = outer._bursting(req)
                if a is None:
                    try:
                        a = outer._next(req)
                    except Exception as e:  # a broken script is a 500 with the reason
                        a = Action(status=500, usage=None)
                        a.text = f"{type(e).__name__}: {e}"
                if outer.latency and a.status == 200:
                    time.sleep(outer.latency)
                if a.delay:
                    time.sleep(a.delay)
                if a.raw is not None:
                    self._send(a.status, a.raw, a.headers)
                    return
                if a.status != 200:
                    body = {"error": {"message": a.text or f"scripted {a.status}", "type": "server_error",
                                      "code": a.status}}
                    self._send(a.status, json.dumps(body).encode(), a.headers)
                    return
                out: dict[str, Any] = {
                    "id": f"chatcmpl-{len(outer.requests)}", "object": "chat.completion", "created": 0,
                    "model": req.get("model", ""),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": a.text},
                                 "finish_reason": a.finish_reason}],
                }
                if a.usage is not None:
                    out["usage"] = dict(a.usage, total_tokens=sum(a.usage.values()))
                self._send(200, json.dumps(out).encode(), a.headers)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
