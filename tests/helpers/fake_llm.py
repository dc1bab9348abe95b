"""A real HTTP fake of an OpenAI-compatible chat server on 127.0.0.1, with scriptable faults.

    with FakeLLM(latency=0.05) as server:                # serves http://127.0.0.1:PORT/v1 from a thread
        server.script("429", Fault("500"), "empty")      # the next requests get these faults, in order
        server.policy = lambda req: "500" if req.class_name == "zebra" else None   # then this, per request
        ... LLMParams(base_url=server.url, ...) ...
        server.requests, server.max_in_flight             # received bodies + headers; peak concurrency
        server.requests_per_prompt()                      # Counter: conversation digest -> requests received
    with FakeLLM(requests_per_minute=600) as server:     # a rate limit: 429 + Retry-After when exceeded
        server.rate_limited                               # requests refused by the limit

    .venv/bin/python -m tests.helpers.fake_llm --port 8765 --latency 0.1     # manual use / benchmarks (Ctrl-C stops)

Endpoints: POST /v1/chat/completions, GET /v1/models, GET /stats (chat requests received, peak concurrency). The
default answer is deterministic: it names the class (the first "quoted" string of the first user message) and
carries a digest of the whole conversation, so different prompts get different answers. Usage counts words. Faults
(Fault(kind) or the kind as a string): 429 and 503 (Retry-After header from `retry_after`), 500, 400, 401, 404, slow
(answers after `delay` s), empty, long (over 77 CLIP tokens), refusal, malformed (invalid JSON body), html (a 200
web page, as a wrong base_url gives), close (drops the connection without answering), other-model (answers as model
`model`).

Rate limits (`requests_per_minute`, `tokens_per_minute`) are token buckets holding `burst_s` seconds of the rate
(at least one request), refilled continuously, as APIs enforce a per-minute limit over short windows; a request
costs what OpenAI's limiter estimates, message characters / 4 + max_tokens. A request over a limit gets 429 with
Retry-After (the seconds until it would fit) and is counted in `rate_limited`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import signal
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from tests.helpers.rate_limit import Bucket, request_cost

FAULT_KINDS = ("429", "500", "503", "400", "401", "404", "slow", "empty", "long", "refusal", "malformed", "html",
               "close", "other-model")


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour."""

    kind: str
    retry_after: str | None = "0"
    """429/503: value of the Retry-After header (None = no header)."""
    delay: float = 2.0
    """slow: seconds before answering (make it longer than the client's timeout)."""
    model: str = "served-alias"
    """other-model: the model name in the answer."""
    body: str | None = None
    """Error kinds: response body (default: an OpenAI-style error object)."""

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; choose from {FAULT_KINDS}")


@dataclass(frozen=True)
class Request:
    """What the server received (kept in `FakeLLM.requests`)."""

    body: dict
    headers: dict
    """Header names in lower case."""
    at: float = 0.0
    """time.monotonic() when the request arrived."""

    @property
    def user_text(self) -> str:
        return "\n".join(m.get("content") or "" for m in self.body.get("messages", []) if m.get("role") == "user")

    @property
    def prompt(self) -> str:
        """A digest of the whole conversation: the same prompt (and re-ask chain) gives the same digest."""
        return hashlib.sha256(json.dumps(self.body.get("messages"), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def class_name(self) -> str:
        """The first "quoted" string of the user messages (our templates quote the class name)."""
        match = re.search(r'"([^"]+)"', self.user_text)
        return match.group(1) if match else "object"


def default_answer(request: Request) -> str:
    """Deterministic one-sentence description naming the class, distinct per conversation."""
    digest = request.prompt[:8]
    article = "An" if request.class_name[:1].lower() in "aeiou" else "A"
    return (f"{article} {request.class_name} seen clearly in a photo, with its typical visual features "
            f"(detail {digest}).")


class FakeLLM:
    """Context manager running the fake server in a background thread."""

    def __init__(self, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0, model: str | None = None,
                 requests_per_minute: float | None = None, tokens_per_minute: float | None = None,
                 burst_s: float = 1.0):
        self.latency = latency
        self.rate_limited = 0
        """Requests refused with 429 by the rate limits."""
        self._buckets = [Bucket(rate, burst_s, cost) for rate, cost in (
            (requests_per_minute, lambda body: 1), (tokens_per_minute, request_cost)) if rate]
        self.model = model
        """Model name answered (None: echo the requested one)."""
        self.policy: Callable[[Request], Fault | str | None] | None = None
        self.requests: list[Request] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server = ThreadingHTTPServer((host, port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if "messages" in r.body]

    def requests_per_prompt(self) -> Counter:
        """How many chat requests each prompt (conversation digest) received, retries included."""
        with self._lock:
            return Counter(r.prompt for r in self.chat_requests)

    def script(self, *faults: Fault | str) -> None:
        """Queue faults for the next requests, in order (each fault is used once)."""
        with self._lock:
            self._faults.extend(_as_fault(f) for f in faults)

    def reset(self) -> None:
        """Forget received requests and the peak concurrency (faults and policy stay)."""
        with self._lock:
            self.requests.clear()
            self.max_in_flight = 0

    def start(self) -> "FakeLLM":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers and close open connections."""
        self._stop.set()
        if self._thread.is_alive():
            self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FakeLLM":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _over_limit(self, request: Request) -> float | None:
        """None when the request fits the rate limits (and is charged), else the seconds until it would fit."""
        with self._lock:
            now = time.monotonic()
            waits = [bucket.wait(now, request.body) for bucket in self._buckets]
            if any(waits):
                self.rate_limited += 1
                return max(waits)
            for bucket in self._buckets:
                bucket.take(now, request.body)
            return None

    def _next_fault(self, request: Request) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
        return _as_fault(self.policy(request)) if self.policy else None

    def _enter(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


def _as_fault(fault: Fault | str | None) -> Fault | None:
    return Fault(fault) if isinstance(fault, str) else fault


def _handler_class(fake: FakeLLM):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle/delayed-ACK stall
            with fake._lock:
                fake._connections.add(self.connection)

        def finish(self):
            with fake._lock:
                fake._connections.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.rstrip("/") == "/stats":  # for benchmarks driving a server in another process
                with fake._lock:
                    stats = {"chat_requests": len(fake.chat_requests), "max_in_flight": fake.max_in_flight}
                self._json(200, stats)
            elif self.path.rstrip("/") == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": fake.model or "fake-model", "object": "model"}]})
            else:
                self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._json(400, {"error": {"message": "request body is not JSON", "type": "invalid_request_error"}})
                return
            request = Request(body, {name.lower(): value for name, value in self.headers.items()}, time.monotonic())
            fake._enter(request)
            try:
                wait = fake._over_limit(request)
                if wait is not None:
                    self._send(429, json.dumps({"error": {"message": "fake rate limit reached",
                                                          "type": "rate_limit_exceeded"}}).encode(),
                               {"Retry-After": f"{wait:.3f}"})
                    return
                self._answer(request, fake._next_fault(request))
            finally:
                fake._leave()

        def _answer(self, request: Request, fault: Fault | None):
            kind = fault.kind if fault else None
            if fake.latency and fake._stop.wait(fake.latency):
                return
            if kind == "slow" and fake._stop.wait(fault.delay):
                return
            if kind == "close":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if kind in ("429", "500", "503", "400", "401", "404"):
                headers = {"Retry-After": fault.retry_after} if kind in ("429", "503") and fault.retry_after else {}
                body = fault.body or json.dumps({"error": {"message": f"fake error {kind}", "type": "server_error"}})
                self._send(int(kind), body.encode(), headers)
                return
            if kind == "malformed":
                self._send(200, b'{"id": "chatcmpl-fake", "choices": [{"message": ', {})
                return
            if kind == "html":
                self._send(200, b"<!doctype html><html><body>Welcome to nginx!</body></html>", {},
                           content_type="text/html")
                return
            text = {"empty": "", "refusal": "I'm sorry, but I cannot help with that request.",
                    "long": f"The {request.class_name} " + " ".join(["has many remarkable visual details"] * 20) + "."
                    }.get(kind, default_answer(request))
            model = fault.model if kind == "other-model" else (fake.model or request.body.get("model", "fake-model"))
            words_in = len(json.dumps(request.body.get("messages", [])).split())
            self._json(200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": words_in, "completion_tokens": len(text.split()),
                          "total_tokens": words_in + len(text.split())}})

        def _json(self, status: int, payload: dict):
            self._send(status, json.dumps(payload).encode(), {})

        def _send(self, status: int, data: bytes, headers: dict, content_type: str = "application/json"):
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timeout) and closed the connection
                self.close_connection = True

    return Handler


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible chat server (for tests and benchmarks).")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops as cleanly as Ctrl-C
    server = FakeLLM(latency=args.latency, port=args.port).start()
    print(f"fake LLM listening on {server.url} (latency {args.latency} s); Ctrl-C stops", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
