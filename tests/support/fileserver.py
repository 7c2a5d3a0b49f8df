"""A Range-capable file server with per-file fault injection.

Model downloads go to CDNs and mirrors that misbehave in many ways; this
stand-in reproduces them on 127.0.0.1 so the downloader can be tested (and
benchmarked) against each one::

    srv = FileServer().start()
    blob = srv.add("/m/model.safetensors", data)
    blob.faults.drop_after = 1 << 20          # hang up after 1 MiB...
    blob.faults.drop_requests = 1             # ...once only
    srv.bytes_served("/m/")                   # what a resume re-fetched

Every file answers GET and HEAD with ``Accept-Ranges``, ``ETag``,
``Content-Length`` and ``Last-Modified``; single ranges (``a-b``, ``a-``,
``-n``) give 206 + ``Content-Range``, unsatisfiable ones 416 with
``bytes */N``, and ``If-Range`` is honoured.  The :class:`Faults` of a file
may be changed while the server runs.  :func:`serve_bytes` is the shared
core: the Hugging Face stand-in's CDN route serves its blobs through it too.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.client import responses
from typing import Literal

from tests.support.httpbase import Handler, LocalServer, free_port

CHUNK = 64 * 1024

HTML_ERROR_PAGE = b"""<!DOCTYPE html>
<html><head><title>Just a moment...</title></head>
<body><h1>Checking your browser before accessing the site.</h1>
<p>Please enable JavaScript and cookies to continue.</p></body></html>
"""


@dataclass
class Faults:
    """How one file misbehaves.  Defaults: a well-behaved server."""

    throttle: int | None = None  # bytes/s, per connection: n connections get n times the bandwidth
    drop_after: int | None = None  # hang up after this many body bytes of a GET...
    drop_requests: int | None = None  # ...but only for the first K such GETs (None: every time)
    ignore_range: bool = False  # 200 + whole body to a Range request (Accept-Ranges still claimed)
    always_416: bool = False  # every request gets 416 + Content-Range: bytes */N
    changing_etag: bool = False  # a new ETag on every request (If-Range then never matches)
    first_byte_delay: float = 0.0  # seconds before the status line
    status: int | None = None  # answer this status instead (403, 404, 429, 500, 502, 503...)
    retry_after: int | None = None  # Retry-After seconds sent with `status`
    html_error: bool = False  # 200 + text/html "are you human" page instead of the bytes
    lfs_pointer: bool = False  # 200 + the Git LFS pointer text instead of the bytes
    length: Literal["content-length", "chunked", "close"] = "content-length"  # how the body's end is marked


def lfs_pointer(data: bytes) -> bytes:
    """The Git LFS pointer file that stands in for ``data`` in a git checkout."""
    sha = hashlib.sha256(data).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n".encode()


@dataclass
class Blob:
    """The bytes behind one URL, their validators, and their faults."""

    data: bytes
    etag: str  # without quotes
    faults: Faults = field(default_factory=Faults)
    last_modified: float = field(default_factory=lambda: float(int(time.time())))
    requests: int = 0  # GET and HEAD requests answered with the bytes
    drops: int = 0  # connections dropped by `faults.drop_after`
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def swap(self, data: bytes, etag: str | None = None) -> None:
        """Replace the content, as if the remote file had been re-uploaded."""
        with self.lock:
            self.data = data
            self.etag = etag or hashlib.sha256(data).hexdigest()
            self.last_modified = max(float(int(time.time())), self.last_modified + 1)

    def snapshot(self) -> tuple[bytes, str]:
        """The content and ETag this request sees (a fresh ETag if it changes per request)."""
        with self.lock:
            self.requests += 1
            if self.faults.changing_etag:
                return self.data, f"{self.etag}-{self.requests}"
            return self.data, self.etag

    def take_drop(self, body_len: int) -> int | None:
        """Where to hang up this GET's body, or None to send it all."""
        f = self.faults
        with self.lock:
            if f.drop_after is None or f.drop_after >= body_len:
                return None
            if f.drop_requests is not None and self.drops >= f.drop_requests:
                return None
            self.drops += 1
            return f.drop_after


@dataclass
class Transfer:
    """One body sent by :func:`serve_bytes`: timing and the throttle's sleep accounting."""

    path: str
    started: float  # time.monotonic() when the body began
    finished: float = 0.0
    sent: int = 0  # body bytes written
    slept: float = 0.0  # seconds the throttle waited
    dropped: bool = False  # hung up on purpose, or the client went away


def parse_range(value: str, size: int) -> tuple[int, int] | None | Literal["unsatisfiable"]:
    """``(first, last)`` for a single byte range, None to ignore the header (RFC 9110 allows it)."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", value)
    if not m or (not m[1] and not m[2]):
        return None  # malformed or multi-range: answer 200 with everything
    if not m[1]:  # suffix: the last n bytes
        n = int(m[2])
        return (max(0, size - n), size - 1) if n and size else "unsatisfiable"
    first = int(m[1])
    last = min(int(m[2]), size - 1) if m[2] else size - 1
    if m[2] and int(m[2]) < first:
        return None
    return (first, last) if first < size else "unsatisfiable"


def if_range_holds(value: str, etag: str, last_modified: float) -> bool:
    """Whether an If-Range validator still matches (strong ETag or exact date)."""
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == f'"{etag}"'
    try:
        return parsedate_to_datetime(value).timestamp() == last_modified
    except (TypeError, ValueError):
        return False


def serve_bytes(handler: BytesHandler, blob: Blob, headers: Sequence[tuple[str, str]] = ()) -> None:
    """Answer a GET/HEAD for ``blob`` with Range support and its faults; ``headers`` go on success replies.

    A GET that sends (part of) the bytes adds a :class:`Transfer` to the server's ``transfers``.
    """
    f = blob.faults
    if f.first_byte_delay:
        time.sleep(f.first_byte_delay)
    if f.status is not None:
        extra = [("Retry-After", str(f.retry_after))] if f.retry_after is not None else []
        phrase = responses.get(f.status, "Error")
        handler.reply(f.status, f"{f.status} {phrase}\n".encode(), extra, content_type="text/plain")
        return
    if f.html_error:
        handler.reply(200, HTML_ERROR_PAGE, content_type="text/html; charset=utf-8")
        return
    data, etag = blob.snapshot()
    if f.lfs_pointer:
        handler.reply(200, lfs_pointer(data), content_type="text/plain; charset=utf-8")
        return
    size = len(data)
    if f.always_416:
        handler.reply(416, b"", [("Content-Range", f"bytes */{size}")])
        return
    wanted = None
    if not f.ignore_range and (value := handler.headers.get("Range")):
        if_range = handler.headers.get("If-Range")
        if if_range is None or if_range_holds(if_range, etag, blob.last_modified):
            wanted = parse_range(value, size)
    if wanted == "unsatisfiable":
        handler.reply(416, b"", [("Content-Range", f"bytes */{size}")])
        return
    first, last = wanted or (0, size - 1)
    head = [
        ("Accept-Ranges", "bytes"),
        ("ETag", f'"{etag}"'),
        ("Last-Modified", formatdate(blob.last_modified, usegmt=True)),
        *headers,
    ]
    if wanted:
        head.append(("Content-Range", f"bytes {first}-{last}/{size}"))
    _send(handler, 206 if wanted else 200, head, data[first : last + 1], blob, f.length)


def _send(handler: BytesHandler, status: int, head: list[tuple[str, str]], body: bytes, blob: Blob,
          length: Literal["content-length", "chunked", "close"]) -> None:  # fmt: skip
    handler.send_response(status)
    for k, v in head:
        handler.send_header(k, v)
    handler.send_header("Content-Type", "application/octet-stream")
    if length == "content-length":
        handler.send_header("Content-Length", str(len(body)))
    elif length == "chunked":
        handler.send_header("Transfer-Encoding", "chunked")
    else:
        handler.send_header("Connection", "close")
        handler.close_connection = True
    handler.end_headers()
    if handler.command == "HEAD":
        return
    transfer = Transfer(handler.path, time.monotonic())
    handler.server_of_bytes.add_transfer(transfer)
    try:
        _write_body(handler, body, blob.faults.throttle, blob.take_drop(len(body)), length == "chunked", transfer)
    except (BrokenPipeError, ConnectionResetError):
        transfer.dropped = True
        handler.close_connection = True
    transfer.finished = time.monotonic()


def _write_body(handler: BytesHandler, body: bytes, rate: int | None, drop_at: int | None, chunked: bool,
                transfer: Transfer) -> None:  # fmt: skip
    """Write ``body`` paced at ``rate`` bytes/s, hanging up after ``drop_at`` bytes."""
    end = len(body) if drop_at is None else drop_at
    step = CHUNK if rate is None else max(1, min(CHUNK, rate // 20))
    while transfer.sent < end:
        piece = body[transfer.sent : min(end, transfer.sent + step)]
        if rate is not None:  # by the end of this piece, at most rate * elapsed bytes are out
            wait = transfer.started + (transfer.sent + len(piece)) / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
                transfer.slept += wait
        if chunked:
            handler.wfile.write(b"%x\r\n" % len(piece))
        handler.write_body(piece)
        if chunked:
            handler.wfile.write(b"\r\n")
        transfer.sent += len(piece)
    if drop_at is not None:
        transfer.dropped = True
        handler.close_connection = True
    elif chunked:
        handler.wfile.write(b"0\r\n\r\n")


class BytesHandler(Handler):
    """Base handler of a :class:`BytesServer`: :meth:`route` runs while the request counts as in flight."""

    @property
    def server_of_bytes(self) -> BytesServer:
        server = self.owner
        assert isinstance(server, BytesServer)
        return server

    def do_GET(self) -> None:
        server = self.server_of_bytes
        with server.lock:
            server.active += 1
        try:
            self.route()
        finally:
            with server.lock:
                server.active -= 1

    do_HEAD = do_GET

    def route(self) -> None:
        raise NotImplementedError


@dataclass
class BytesServer(LocalServer):
    """A LocalServer answering through :func:`serve_bytes`: keeps its transfers, knows when it is idle.

    A client may return before the server has counted its last bytes: call :meth:`wait_idle`
    before reading ``bytes_served()`` or ``transfers``.
    """

    transfers: list[Transfer] = field(default_factory=list)
    active: int = 0  # requests being answered

    def add_transfer(self, transfer: Transfer) -> None:
        with self.lock:
            self.transfers.append(transfer)

    def transfers_of(self, path: str) -> list[Transfer]:
        with self.lock:
            return [t for t in self.transfers if t.path.split("?", 1)[0] == path]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being answered; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.active:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.active} request(s) still running after {timeout} s")
            time.sleep(0.01)


class _FileHandler(BytesHandler):
    def route(self) -> None:
        server = self.owner
        assert isinstance(server, FileServer)
        blob = server.files.get(self.path.split("?", 1)[0])
        if blob is None:
            self.reply(404, b"404 Not Found\n", content_type="text/plain")
            return
        serve_bytes(self, blob, server.headers.get(self.path.split("?", 1)[0], ()))


@dataclass
class FileServer(BytesServer):
    """Files registered at paths, served with Range and per-file :class:`Faults`."""

    handler: type[Handler] = _FileHandler
    files: dict[str, Blob] = field(default_factory=dict)
    headers: dict[str, Sequence[tuple[str, str]]] = field(default_factory=dict)  # path -> extra reply headers

    def add(self, path: str, data: bytes, etag: str | None = None, faults: Faults | None = None,
            headers: Sequence[tuple[str, str]] = ()) -> Blob:  # fmt: skip
        """Serve ``data`` at ``path`` (ETag defaults to its sha256), with ``headers`` (Content-Disposition …)."""
        blob = Blob(data, etag or hashlib.sha256(data).hexdigest(), faults or Faults())
        self.files[path] = blob
        self.headers[path] = tuple(headers)
        return blob

    def faults(self, path: str) -> Faults:
        """The live faults of ``path``: change them while the server runs."""
        return self.files[path].faults

    def swap(self, path: str, data: bytes, etag: str | None = None) -> None:
        """Change the remote file: new bytes, new ETag, later Last-Modified."""
        self.files[path].swap(data, etag)

    def url_for(self, path: str) -> str:
        return self.url + path


def refused_url(path: str = "/") -> str:
    """A URL on a 127.0.0.1 port nobody listens on: connecting is refused."""
    return f"http://127.0.0.1:{free_port()}{path}"
