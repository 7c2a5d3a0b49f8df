"""Measuring mirrors: DNS, connect, TLS, first byte and throughput.

Every candidate is probed at once, each in its own thread with a deadline,
so a test of thirty mirrors takes about one probe timeout, not thirty.  A
probe fetches a small real object of its channel (the ``pip`` project page
of a PyPI index, the ``torch`` page of a wheel index, a model's metadata on
a Hugging Face endpoint, ...) and checks that the content is what that kind
of mirror should serve: a captive portal or an error page answered with 200
is a failure, not a fast mirror.

Timings come from :mod:`http.client` over a socket we open ourselves, so
connect and TLS are measured separately.  Through an HTTP proxy only the
first byte and the throughput are measured.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

MAX_BODY = 1 << 20  # read at most 1 MiB of the probe object
MAX_REDIRECTS = 4


@dataclass(frozen=True)
class Target:
    """One thing to probe."""

    channel: str
    id: str
    url: str  # the mirror's base URL as configured (what a result names)
    probe_url: str  # the object actually fetched
    kind: str
    automatic: bool = True  # may ``auto`` choose it


@dataclass
class Result:
    channel: str
    id: str
    url: str
    ok: bool
    error: str = ""
    status: int | None = None
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    ttfb_ms: float | None = None
    total_ms: float | None = None
    bytes: int = 0
    bytes_per_s: float | None = None
    automatic: bool = True

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class ProbeFailure(Exception):
    """Why a probe failed, in a few plain words."""


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def describe(exc: BaseException) -> str:
    """A short, stable reason for a network failure."""
    if isinstance(exc, ProbeFailure):
        return str(exc)
    if isinstance(exc, socket.gaierror):
        return "DNS lookup failed"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate error"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def api_error_answer(kind: str, body: bytes, status: int) -> bool:
    """A Civitai endpoint without the list route (a mirror or stand-in that serves only the model, version and
    download routes) still answers ``/api/v1/models`` in Civitai's JSON error shape: that is its API, not a typo."""
    if kind != "civitai" or status != 404:
        return False
    try:
        data = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return False
    return isinstance(data, dict) and "error" in data


def content_problem(kind: str, body: bytes, content_type: str, status: int) -> str | None:
    """Why this body is not what a ``kind`` mirror should answer, or None."""
    text = body[:65536].decode("utf-8", "replace")
    low = text.lower()
    if kind in ("pep503", "flat"):
        if "<a " not in low and "<a\n" not in low:
            return "not a package index (wrong content)"
        if kind == "flat" and ".whl" not in low:
            return "no wheels listed (wrong content)"
        return None
    if kind == "hf":
        try:
            data = json.loads(text if len(body) < 65536 else body.decode("utf-8", "replace"))
        except ValueError:
            return "not a Hugging Face API answer (wrong content)"
        return None if isinstance(data, dict) and "id" in data else "not a Hugging Face API answer (wrong content)"
    if kind == "civitai" and api_error_answer(kind, body, status):
        return None
    if kind in ("civitai", "modelscope") and status < 300:
        key = "items" if kind == "civitai" else "Code"
        try:
            data = json.loads(body.decode("utf-8", "replace"))
        except ValueError:
            data = None
        return None if isinstance(data, dict) and key in data else f"not a {kind} API answer (wrong content)"
    if kind == "embed" and "html" in content_type:
        return "an HTML page instead of a file (wrong content)"
    return None


def _open(
    scheme: str, host: str, port: int, timeout: float, proxy: str, timings: dict[str, float]
) -> http.client.HTTPConnection:
    if proxy:
        p = urlsplit(proxy)
        if p.scheme not in ("http", "https"):
            raise ProbeFailure(f"{p.scheme} proxies are not measured; use an http:// proxy for the speed test")
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        if scheme == "https":
            conn: http.client.HTTPConnection = cls(p.hostname or "", p.port or 80, timeout=timeout)
            conn.set_tunnel(host, port)
        else:
            conn = http.client.HTTPConnection(p.hostname or "", p.port or 80, timeout=timeout)
        return conn
    start = time.monotonic()
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    timings["dns"] = time.monotonic() - start
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    sock.settimeout(timeout)
    start = time.monotonic()
    try:
        sock.connect(addr)
    except BaseException:
        sock.close()
        raise
    timings["connect"] = time.monotonic() - start
    if scheme == "https":
        start = time.monotonic()
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        timings["tls"] = time.monotonic() - start
        conn = http.client.HTTPSConnection(host, port, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.sock = sock
    return conn


def probe(target: Target, timeout: float, proxy: str = "", deadline: float | None = None) -> Result:
    """Fetch ``target.probe_url`` once, within ``timeout`` seconds (or by ``deadline``)."""
    result = Result(target.channel, target.id, target.url, ok=False, automatic=target.automatic)
    if target.kind == "local" or not target.probe_url.startswith(("http://", "https://")):
        folder = Path(target.probe_url[7:] if target.probe_url.startswith("file://") else target.probe_url)
        if not folder.is_dir():
            result.error = "no such folder"
        elif not any(folder.glob("*.whl")):
            result.error = "no wheels in the folder"
        else:
            result.ok = True
            result.connect_ms = result.ttfb_ms = result.total_ms = 0.0
        return result
    deadline = time.monotonic() + timeout if deadline is None else deadline
    url = target.probe_url
    started = time.monotonic()
    timings: dict[str, float] = {}
    try:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            scheme = parts.scheme
            port = parts.port or (443 if scheme == "https" else 80)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProbeFailure("timed out")
            conn = _open(scheme, parts.hostname or "", port, remaining, proxy, timings if "dns" not in timings else {})
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            if proxy and scheme == "http":
                path = url
            sent = time.monotonic()
            conn.request("GET", path, headers={"User-Agent": "yijian-mirror-test", "Accept-Encoding": "identity"})
            resp = conn.getresponse()
            if "ttfb" not in timings:
                timings["ttfb"] = time.monotonic() - sent
            result.status = resp.status
            if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                url = urljoin(url, resp.getheader("Location") or "")
                resp.read(0)
                conn.close()
                continue
            first = time.monotonic()
            body = bytearray()
            while len(body) < MAX_BODY and time.monotonic() < deadline:
                if conn.sock is not None:
                    conn.sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = resp.read(65536)
                if not chunk:
                    break
                body += chunk
            done = time.monotonic()
            conn.close()
            result.bytes = len(body)
            if done > first and body:
                result.bytes_per_s = round(len(body) / (done - first), 1)
            result.total_ms = _ms(done - started)
            if resp.status >= 400 and not api_error_answer(target.kind, bytes(body), resp.status):
                raise ProbeFailure(f"HTTP {resp.status}")
            problem = content_problem(target.kind, bytes(body), resp.getheader("Content-Type") or "", resp.status)
            if problem:
                raise ProbeFailure(problem)
            result.ok = True
            break
        else:
            raise ProbeFailure("too many redirects")
    except Exception as exc:  # every failure becomes a reason in the table
        result.error = describe(exc)
    if "dns" in timings:
        result.dns_ms = _ms(timings["dns"])
    if "connect" in timings:
        result.connect_ms = _ms(timings["connect"])
    if "tls" in timings:
        result.tls_ms = _ms(timings["tls"])
    if "ttfb" in timings:
        result.ttfb_ms = _ms(timings["ttfb"])
    return result


def probe_all(targets: Sequence[Target], timeout: float, proxy: str = "") -> list[Result]:
    """Probe every target at once; returns after about ``timeout`` at most."""
    results: dict[int, Result] = {}
    deadline = time.monotonic() + timeout

    def run(i: int, target: Target) -> None:
        results[i] = probe(target, timeout, proxy, deadline)

    threads = [threading.Thread(target=run, args=(i, t), daemon=True) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    end = deadline + 0.1
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    out = []
    for i, target in enumerate(targets):
        r = results.get(i)
        out.append(r if r is not None else Result(target.channel, target.id, target.url, False, "timed out",
                                                  automatic=target.automatic))  # fmt: skip
    return out


def rank(results: Sequence[Result]) -> list[Result]:
    """Healthy first, fastest first; failures keep their order after them."""
    return sorted(results, key=lambda r: (not r.ok, r.total_ms if r.ok and r.total_ms is not None else 0.0))
