"""An HTTP proxy in front of a real OpenAI-compatible server that injects faults, chosen per request body.

``FaultProxy(upstream, fault=rule)`` listens on 127.0.0.1 (a daemon thread) and forwards every request to
``upstream`` (a base URL such as ``http://127.0.0.1:8000/v1``; ``proxy.base_url`` is the same URL on the
proxy). For each POST, ``rule(body_bytes, attempt)`` (``attempt``: 1 for the first time this body is seen,
2 for the second, ...) names a fault, or None to forward it. The faults never reach the upstream:

* ``"429"``: 429 with ``Retry-After: 1``;
* ``"500"``: 500 with a JSON error;
* ``"slow"``: no answer at all until the client gives up and disconnects (or ``hold_cap`` seconds pass);
* ``"malformed"``: 200, ``application/json``, a truncated body;
* ``"drop"``: the socket closed without a response.

Bodies are identified by the digest of their canonical JSON, so the rule's choices, and the counts, depend on
what was asked, not on timing or concurrency. Counted per body digest: ``seen`` (POSTs received), ``paid``
(forwarded and answered 200 by the upstream); ``faults`` totals each injected kind; ``bodies`` keeps each
body's decoded JSON. GET requests (``/v1/models``, ``/health``) are always forwarded untouched.

The gate: with ``pause_after=N``, the proxy forwards N counted POSTs (those ``counts(body)`` accepts; all by
default), then holds the next one before forwarding and sets ``paused``; ``release(forward=True)`` lets the
held requests (and all later ones) through, ``release(forward=False)`` closes them unanswered and unforwarded.
Every response carries ``Connection: close`` so the client never reuses a connection the proxy has closed.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["FaultProxy", "FAULTS", "body_digest"]

FAULTS = ("429", "500", "slow", "malformed", "drop")
#: Headers that describe one hop, not the request: never copied across the proxy.
_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "content-length", "host"}
#: Guards against an upstream that never answers; never a speed requirement.
UPSTREAM_GUARD_S = 600.0


def body_digest(body: bytes) -> str:
    """The digest of a request body: of its canonical JSON when it is JSON, else of its bytes."""
    try:
        data = json.dumps(json.loads(body), sort_keys=True, ensure_ascii=False).encode("utf-8")
    except ValueError:
        data = body
    return hashlib.sha256(data).hexdigest()[:32]


class FaultProxy:
    """See the module docstring. Use as a context manager, or call `close`."""

    def __init__(self, upstream: str, fault: Callable[[bytes, int], str | None] | None = None, *,
                 hold_cap: float = 120.0, pause_after: int | None = None,
                 counts: Callable[[dict], bool] | None = None):
        url = urlsplit(upstream)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream_host, self.upstream_port = url.hostname, url.port or 80
        self.prefix = url.path.rstrip("/")
        self.fault = fault
        self.hold_cap = hold_cap
        self.counts = counts or (lambda body: True)
        self.lock = threading.Lock()
        self.seen: Counter = Counter()
        self.paid: Counter = Counter()
        self.faults: Counter = Counter()
        self.bodies: dict = {}
        self.posts = 0
        self.forwarded = 0
        self.log: list = []  # (digest, attempt, what happened)
        self.paused = threading.Event()
        self._pause_after = pause_after
        self._counted = 0
        self._released = threading.Event()
        self._forward_held = True
        self._closing = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 (the stdlib's name)
                pass

            def do_GET(self):
                proxy._forward(self, b"")

            def do_POST(self):
                proxy._post(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}{self.prefix}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    # -- the test's view -------------------------------------------------------------------------
    def release(self, *, forward: bool = True) -> None:
        """Open the gate: held requests (and all later ones) are forwarded, or, with ``forward=False``,
        the held ones are closed unanswered (later ones are forwarded)."""
        with self.lock:
            self._forward_held = forward
            self._pause_after = None
        self._released.set()

    def attempts(self, digest: str) -> int:
        with self.lock:
            return self.seen[digest]

    def close(self) -> None:
        self._closing.set()
        self.release(forward=False)
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(30)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------------
    def _post(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        digest = body_digest(body)
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
        with self.lock:
            self.posts += 1
            self.seen[digest] += 1
            attempt = self.seen[digest]
            self.bodies.setdefault(digest, decoded)
        kind = self.fault(body, attempt) if self.fault is not None else None
        if kind is not None:
            if kind not in FAULTS:
                raise ValueError(f"unknown fault {kind!r}; the faults are {FAULTS}")
            with self.lock:
                self.faults[kind] += 1
                self.log.append((digest, attempt, kind))
            getattr(self, "_fault_" + kind)(handler)
            return
        if not self._gate(decoded):
            with self.lock:
                self.log.append((digest, attempt, "held, then closed"))
            handler.close_connection = True
            return

        def answered(status):  # counted before the client can see the answer (and send its next request)
            with self.lock:
                self.forwarded += 1
                if status == 200:
                    self.paid[digest] += 1
                self.log.append((digest, attempt, f"forwarded: {status}"))

        self._forward(handler, body, answered)

    def _gate(self, decoded) -> bool:
        """Whether this request may be forwarded (it waits while the gate holds it)."""
        if not (isinstance(decoded, dict) and self.counts(decoded)):
            return True
        with self.lock:
            if self._pause_after is None or self._counted < self._pause_after:
                self._counted += 1
                return True
            self.paused.set()
        self._released.wait(UPSTREAM_GUARD_S)
        with self.lock:
            return self._forward_held and not self._closing.is_set()

    def _forward(self, handler, body: bytes, answered: Callable[[int | None], None] | None = None) -> None:
        """Send the request upstream and its answer back; ``answered(status)`` (None: the upstream failed)
        runs before the answer is written to the client."""
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP}
        headers["Host"] = f"{self.upstream_host}:{self.upstream_port}"
        if handler.command == "POST":
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=UPSTREAM_GUARD_S)
        try:
            upstream.request(handler.command, handler.path, body=body if handler.command == "POST" else None,
                             headers=headers)
            response = upstream.getresponse()
            data = response.read()
            out = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP]
            status = response.status
        except OSError as error:
            if answered is not None:
                answered(None)
            self._reply(handler, 502, json.dumps({"error": {"message": f"proxy: upstream failed: {error}"}}).encode())
            return
        finally:
            upstream.close()
        if answered is not None:
            answered(status)
        self._reply(handler, status, data, out)

    @staticmethod
    def _reply(handler, status: int, data: bytes, headers=(("Content-Type", "application/json"),)) -> None:
        handler.close_connection = True
        try:
            handler.send_response(status)
            for key, value in headers:
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(data)
            handler.wfile.flush()
        except OSError:  # the client went away first
            pass

    # -- faults ----------------------------------------------------------------------------------
    def _fault_429(self, handler) -> None:
        error = {"error": {"message": "proxy: rate limited", "type": "rate_limit_error", "code": 429}}
        self._reply(handler, 429, json.dumps(error).encode(), [("Content-Type", "application/json"),
                                                               ("Retry-After", "1")])

    def _fault_500(self, handler) -> None:
        error = {"error": {"message": "proxy: internal error", "type": "server_error", "code": 500}}
        self._reply(handler, 500, json.dumps(error).encode())

    def _fault_malformed(self, handler) -> None:
        self._reply(handler, 200, b'{"id": "cmpl-proxy", "object": "text_completion", "choices": [{"ind')

    def _fault_drop(self, handler) -> None:
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)

    def _fault_slow(self, handler) -> None:
        """Say nothing until the client disconnects (or ``hold_cap`` passes, or the proxy closes)."""
        handler.close_connection = True
        sock = handler.connection
        deadline = time.monotonic() + self.hold_cap
        while time.monotonic() < deadline and not self._closing.is_set():
            readable, _, _ = select.select([sock], [], [], 0.25)
            if readable:
                try:
                    if not sock.recv(1, socket.MSG_PEEK):
                        return  # the client closed its end
                except OSError:
                    return
                return  # the client sent more (a new request on this connection): give up on this one
