"""A local package index over folders of wheels, able to misbehave like a bad mirror.

One :class:`PackageIndex` serves several wheel folders ("mounts").  The root
folder (optional) is mounted at ``""`` like a PyPI mirror; each variant folder
at ``/whl/<variant>`` like ``https://download.pytorch.org/whl/cu128``.  Every
mount ``P`` offers the same three views:

* ``P/simple/`` and ``P/simple/<normalized-name>/``: PEP 503 pages whose links
  carry ``#sha256=<hex>`` and ``data-requires-python`` (read from the wheel);
  a project exists only if its folder holds a wheel for it (a ``pip`` wheel
  gives a ``/simple/pip/`` page, as ``uv venv --seed`` needs);
* ``P/flat/``: a plain list of relative ``<a href>`` links to the wheels,
  like Aliyun's ``https://mirrors.aliyun.com/pytorch-wheels/cu121/``
  (for ``--find-links``);
* ``P/files/<wheel>``: the files, with ``HEAD``, ``Accept-Ranges`` and single
  ``Range`` requests (``bytes=N-``, ``N-M``, ``-N``) answered ``206``, or ``416``;
  like PyPI's file host, an ``ETag`` and ``Cache-Control: max-age=365000000, immutable``,
  and ``304`` to an ``If-None-Match`` with that ETag (pip keeps finished wheels in its
  cache; without these it fetched them all again after a kill).

Folders are read on every request, so wheels added during a test show up.
:attr:`PackageIndex.faults` switches misbehaviour at run time: every request
answered with one status (403: a mirror that blocks us), an HTML error page
with status 200 (a captive portal or maintenance page), a delay before each
answer, and chosen projects missing (404).  :meth:`PackageIndex.heal` undoes all.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.parser import HeaderParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import cast
from urllib.parse import quote, unquote, urlsplit

from tests.support.httpbase import Handler, LocalServer
from tests.support.wheels import normalize

_CHUNK = 1 << 20
FILE_CACHING = "max-age=365000000, immutable, public"  # what files.pythonhosted.org sends with every file
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_ROUTE = re.compile(r"(?:/whl/(?P<variant>[^/]+))?/(?P<view>simple|flat|files)/(?P<rest>.*)")

ERROR_PAGE = (
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>镜像站维护中 / Mirror under maintenance</title></head>\n"
    "<body><h1>镜像站维护中</h1><p>This mirror is under maintenance. Please try again later.</p></body></html>\n"
)  # fmt: skip


@dataclass(frozen=True)
class WheelFile:
    """One served wheel and what its index link says about it."""

    path: Path
    project: str  # normalized
    sha256: str
    requires_python: str | None


@dataclass
class Faults:
    """Misbehaviour, read on every request; tests may change it while the server runs."""

    status: int | None = None  # answer every request with this status (e.g. 403)
    agent: str = ""  # ... only requests whose User-Agent starts with this (TUNA's WAF: "pip/"); "" for all
    html_page: bool = False  # answer every request 200 with :data:`ERROR_PAGE`
    delay: float = 0.0  # seconds to wait before answering
    missing: set[str] = field(default_factory=set)  # normalized projects answered 404
    login: tuple[str, str] | None = None  # a private mirror: 401 unless the request carries this Basic login


_cache: dict[tuple[Path, int, int], WheelFile] = {}


def basic_auth(user: str, password: str) -> str:
    """The ``Authorization`` header value of an HTTP Basic login."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def inspect_wheel(path: Path) -> WheelFile:
    """The index facts of a wheel (sha256, ``Requires-Python``), cached by path, size and mtime."""
    stat = path.stat()
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _cache:
        with zipfile.ZipFile(path) as zf:
            meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
            meta = HeaderParser().parsestr(zf.read(meta_name).decode())
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        project = normalize(path.name.split("-", 1)[0])
        _cache[key] = WheelFile(path, project, digest, meta.get("Requires-Python"))
    return _cache[key]


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(first, last)`` for one satisfiable byte range; raises ValueError if unsatisfiable, None to ignore it."""
    m = _RANGE.fullmatch(header.strip())
    if m is None or m[1] == m[2] == "":
        return None  # multi-range or malformed: serve the whole file, as RFC 9110 allows
    if m[1] == "":
        length = int(m[2])
        if length == 0:
            raise ValueError(header)
        return max(size - length, 0), size - 1
    first, last = int(m[1]), int(m[2]) if m[2] else size - 1
    if first >= size or last < first:
        raise ValueError(header)
    return first, min(last, size - 1)


def _page(title: str, anchors: Iterable[str], *, pep503: bool) -> bytes:
    meta = '<meta name="pypi:repository-version" content="1.0">' if pep503 else ""
    body = "<br/>\n".join(anchors)
    text = f"<!DOCTYPE html>\n<html><head>{meta}<title>{title}</title></head>\n<body><h1>{title}</h1>\n{body}\n</body></html>\n"
    return text.encode()


class _IndexHandler(Handler):
    @property
    def index(self) -> PackageIndex:
        return cast(PackageIndex, self.owner)

    def do_GET(self) -> None:
        try:
            self._answer()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up (a timeout, an interrupted download)

    do_HEAD = do_GET

    def _answer(self) -> None:
        faults = self.index.faults
        if faults.delay:
            time.sleep(faults.delay)
        if faults.status is not None and self.headers.get("User-Agent", "").startswith(faults.agent):
            title = f"{faults.status} {HTTPStatus(faults.status).phrase}"
            return self._html(_page(title, [], pep503=False), faults.status)
        if faults.html_page:
            return self._html(ERROR_PAGE.encode())
        if faults.login is not None and self.headers.get("Authorization") != basic_auth(*faults.login):
            self.index.refused_logins += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="private mirror"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        route = _ROUTE.fullmatch(unquote(urlsplit(self.path).path))
        folder = self.index.folder(route["variant"]) if route else None
        if route is None or folder is None:
            return self._not_found()
        prefix = f"/whl/{route['variant']}" if route["variant"] else ""
        wheels = [w for w in self.index.wheels(folder) if w.project not in faults.missing]
        view, rest = route["view"], route["rest"]
        if view == "simple" and rest == "":
            projects = sorted({w.project for w in wheels})
            anchors = [f'<a href="{prefix}/simple/{p}/">{p}</a>' for p in projects]
            return self._html(_page("Simple index", anchors, pep503=True))
        if view == "simple" and rest.endswith("/") and rest.count("/") == 1:
            project = normalize(rest[:-1])
            links = [w for w in wheels if w.project == project]
            if not links:
                return self._not_found()
            anchors = [self._anchor(f"{prefix}/files/", w) for w in links]
            return self._html(_page(f"Links for {project}", anchors, pep503=True))
        if view == "flat" and rest == "":
            anchors = [f'<a href="../files/{quote(w.path.name)}">{w.path.name}</a>' for w in wheels]
            return self._html(_page(f"Index of {prefix}/flat/", anchors, pep503=False))
        found = [w for w in wheels if w.path.name == rest] if view == "files" else []
        if not found:
            return self._not_found()
        return self._send_file(found[0])

    @staticmethod
    def _anchor(base: str, wheel: WheelFile) -> str:
        href = f"{base}{quote(wheel.path.name)}#sha256={wheel.sha256}"
        rp = f' data-requires-python="{html.escape(wheel.requires_python)}"' if wheel.requires_python else ""
        return f'<a href="{href}"{rp}>{html.escape(wheel.path.name)}</a>'

    def _html(self, body: bytes, status: int = 200) -> None:
        self.reply(status, body, content_type="text/html; charset=utf-8")

    def _not_found(self) -> None:
        self.reply(404, b"<html><body><h1>404 Not Found</h1></body></html>\n", content_type="text/html")

    def _send_file(self, wheel: WheelFile) -> None:
        size = wheel.path.stat().st_size
        first, last, status = 0, size - 1, 200
        # As PyPI's file host and the mirrors' web servers answer: a file never changes (pip keeps it in its cache
        # and does not ask again), and a revalidation with the ETag gets 304 without the body.
        headers = [("Accept-Ranges", "bytes"), ("ETag", f'"{wheel.sha256}"'), ("Cache-Control", FILE_CACHING)]
        if self.headers.get("If-None-Match", "").strip() in (f'"{wheel.sha256}"', f'W/"{wheel.sha256}"', "*"):
            return self.reply(304, b"", headers)
        if "Range" in self.headers:
            try:
                wanted = parse_range(self.headers["Range"], size)
            except ValueError:
                return self.reply(416, b"", headers + [("Content-Range", f"bytes */{size}")])
            if wanted is not None:
                (first, last), status = wanted, 206
                headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        self.send_response(status)
        for key, value in headers + [("Content-Type", "application/octet-stream")]:
            self.send_header(key, value)
        self.send_header("Content-Length", str(last - first + 1))
        self.end_headers()
        if self.command == "HEAD":
            return
        with wheel.path.open("rb") as f:
            f.seek(first)
            left = last - first + 1
            while left > 0:
                chunk = f.read(min(_CHUNK, left))
                self.write_body(chunk)
                left -= len(chunk)


@dataclass
class PackageIndex(LocalServer):
    """A package index over ``root`` (mounted at ``""``) and ``variants`` (at ``/whl/<name>``)."""

    handler: type[BaseHTTPRequestHandler] = _IndexHandler
    root: Path | None = None
    variants: dict[str, Path] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    refused_logins: int = 0  # requests answered 401 by a private mirror (:attr:`Faults.login`)

    def __enter__(self) -> PackageIndex:
        self.start()
        return self

    def folder(self, variant: str | None) -> Path | None:
        """The wheel folder behind a mount (``None``: the root), or None if there is none."""
        return self.root if variant is None else self.variants.get(variant)

    @staticmethod
    def wheels(folder: Path) -> list[WheelFile]:
        """The wheels of a folder, sorted by file name."""
        return [inspect_wheel(p) for p in sorted(folder.glob("*.whl"))]

    def _base(self, variant: str | None) -> str:
        if self.folder(variant) is None:
            raise KeyError(f"no wheel folder mounted for variant {variant!r}")
        return self.url + (f"/whl/{variant}" if variant else "")

    def simple_url(self, variant: str | None = None) -> str:
        """The PEP 503 index URL (no trailing slash), for ``--default-index`` / ``--index-url``."""
        return self._base(variant) + "/simple"

    def flat_url(self, variant: str | None = None) -> str:
        """The flat listing URL, for ``--find-links``."""
        return self._base(variant) + "/flat/"

    def file_url(self, filename: str, variant: str | None = None) -> str:
        """The download URL of one wheel."""
        return f"{self._base(variant)}/files/{quote(filename)}"

    def forbid(self, status: int = 403, agent: str = "") -> None:
        """Answer every request (or those whose User-Agent starts with ``agent``) with ``status`` and a one-line page."""
        self.faults.status, self.faults.agent = status, agent

    def serve_error_page(self) -> None:
        """Answer every request 200 with an HTML error page instead of the content."""
        self.faults.html_page = True

    def slow_down(self, seconds: float) -> None:
        """Wait ``seconds`` before answering each request."""
        self.faults.delay = seconds

    def hide(self, project: str) -> None:
        """Answer 404 for ``project`` (its page and files) and leave it out of the listings."""
        self.faults.missing.add(normalize(project))

    def heal(self) -> None:
        """Stop misbehaving."""
        self.faults = Faults()
