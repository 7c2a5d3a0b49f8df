"""The base of every local stand-in server: threaded, HTTP/1.1, on 127.0.0.1.

``python -m http.server`` is not enough for our tests: it ignores Range, and
its listen backlog of 5 overflows under uv's parallel connections.  A
:class:`LocalServer` runs a handler class on a free port in a background
thread, counts what it served per request, and stops cleanly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Served:
    """One request, as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    body_bytes: int = 0  # bytes of body actually written


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: LocalServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client hanging up is normal here (downloads are cut on purpose); anything else is printed."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class Handler(BaseHTTPRequestHandler):
    """Base handler: HTTP/1.1, quiet, and every reply is recorded."""

    protocol_version = "HTTP/1.1"
    server: _Server
    record: Served

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    @property
    def owner(self) -> LocalServer:
        return self.server.owner

    def parse_request(self) -> bool:
        ok = super().parse_request()
        if ok:
            self.record = Served(self.command, self.path, {k: v for k, v in self.headers.items()})
            with self.owner.lock:
                self.owner.requests.append(self.record)
        return ok

    def send_response(self, code: int, message: str | None = None) -> None:
        if hasattr(self, "record"):
            self.record.status = code
        super().send_response(code, message)

    def write_body(self, data: bytes) -> None:
        """Write body bytes and count them (the client may hang up)."""
        self.wfile.write(data)
        self.record.body_bytes += len(data)

    def reply(self, status: int, body: bytes = b"", headers: Iterable[tuple[str, str]] = (),
              content_type: str = "application/octet-stream") -> None:  # fmt: skip
        """A complete reply with Content-Length; no body for HEAD."""
        self.send_response(status)
        names = set()
        for k, v in headers:
            self.send_header(k, v)
            names.add(k.lower())
        if "content-type" not in names:
            self.send_header("Content-Type", content_type)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.write_body(body)


@dataclass
class LocalServer:
    """A running stand-in: ``url`` is ``http://127.0.0.1:PORT``."""

    handler: type[BaseHTTPRequestHandler]
    requests: list[Served] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: _Server | None = None
    _thread: threading.Thread | None = None

    def start(self) -> LocalServer:
        self._server = _Server(self.handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bytes_served(self, path_prefix: str = "") -> int:
        with self.lock:
            return sum(r.body_bytes for r in self.requests if r.path.startswith(path_prefix))

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port nobody listens on (for 'connection refused' tests)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
