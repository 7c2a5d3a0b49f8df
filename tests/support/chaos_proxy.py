"""A fault-injecting HTTP reverse proxy, put in front of any stand-in server (the chaos soak's one place for faults).

The stand-ins (:mod:`tests.support.pypi_index`, :mod:`tests.support.hf_endpoint`,
:mod:`tests.support.fileserver`, ...) stay as they are: a :class:`ChaosProxy`
forwards every request to its ``upstream`` and spoils the answer the way a bad
mirror does, as set by :meth:`ChaosProxy.set_fault` (one kind at a time; ``None`` heals it).

Kinds (:data:`FAULTS`), as the mirrors of the real network misbehave:

* ``down``: connection refused.  The proxy's own port cannot refuse while it
  listens, so :meth:`ChaosProxy.mirror_url` gives a URL on a port nobody
  listens on instead (the mirror URL is what a user's settings hold);
* ``dns``: the mirror's host name does not resolve (``<name>.invalid``, RFC 6761),
  also through :meth:`ChaosProxy.mirror_url`;
* ``ua403``: 403 with a WAF page to pip's and uv's user agents only (TUNA did this);
* ``5xx``: every answer is 502 Bad Gateway;
* ``html200``: every answer is a maintenance page with status 200;
* ``lfs``: files are answered with their Git LFS pointer (status 200) instead of the bytes;
* ``xet``: files are answered with a 302 to a host outside the mirror that cannot be reached
  (hf-mirror's redirect to a Xet host);
* ``slow``: the first byte of every answer comes after :attr:`ChaosProxy.slow_s` seconds;
* ``drop``: the first answer with a body of a file is cut in the middle (Content-Length promised in full);
* ``norange``: the ``Range`` header is dropped, so a resume gets 200 with the whole body.

"Files" are answers with a body of at least :data:`FILE_MIN` bytes that are not HTML or JSON (wheels,
checkpoints, archives); index pages and API answers pass the file faults untouched.

Every body byte sent is counted per path (:meth:`ChaosProxy.bytes_by_path`), with the full size of
each file seen and the bytes per program that asked (the user agent's first word: ``uv``, ``pip``,
``yijian-downloader``, ``python-requests``; with :data:`RESUMED` added for answers to a ``Range``
request that reached the stand-in), so a caller can tell how many bytes were fetched twice and by whom.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.support.fileserver import lfs_pointer
from tests.support.httpbase import Handler, LocalServer, free_port

FAULTS = ("down", "dns", "ua403", "5xx", "html200", "lfs", "xet", "slow", "drop", "norange")
URL_FAULTS = ("down", "dns")  # applied to the URL, not by the running proxy
FILE_MIN = 64 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host"}
_CHUNK = 1 << 16
RESUMED = " (range)"  # added to the program's name for the bytes of a ranged answer (a resume, not a start over)

WAF_PAGE = b"<html><body><h1>403 Forbidden</h1><p>Request blocked by the web application firewall.</p></body></html>\n"
MAINTENANCE_PAGE = (
    "<!DOCTYPE html><html><head><title>镜像站维护中</title></head>"
    "<body><h1>镜像站维护中 / under maintenance</h1></body></html>\n"
).encode()


def installer_agent(user_agent: str) -> bool:
    """pip's ("pip/24.0 {...}") and uv's ("uv/0.9.5 {...}") user agents."""
    return user_agent.lower().startswith(("pip/", "uv/"))


def agent_name(user_agent: str) -> str:
    """The program behind a user agent: ``"uv/0.9.5 {...}"`` -> ``"uv"``; ``""`` -> ``"?"``."""
    return user_agent.split("/", 1)[0].split(" ", 1)[0].strip().lower() or "?"


@dataclass
class PathCount:
    """Body bytes sent for one path (in all and per program), and the whole size of that file when an answer said it."""

    sent: int = 0
    size: int = 0
    by_agent: dict[str, int] = field(default_factory=dict)


@dataclass
class _State:
    fault: str | None = None
    dropped: set[str] = field(default_factory=set)
    counts: dict[str, PathCount] = field(default_factory=dict)
    hits: int = 0  # answers the fault changed


class _ProxyHandler(Handler):
    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    @property
    def proxy(self) -> ChaosProxy:
        owner = self.owner
        assert isinstance(owner, ChaosProxy)
        return owner

    def _hit(self) -> None:
        with self.proxy.lock:
            self.proxy.state.hits += 1

    def _forward(self) -> None:
        proxy = self.proxy
        fault = proxy.state.fault
        if fault == "slow":
            time.sleep(proxy.slow_s)
            self._hit()
        if fault == "ua403" and installer_agent(self.headers.get("User-Agent", "")):
            self._hit()
            self.reply(403, WAF_PAGE, content_type="text/html")
            return
        if fault == "5xx":
            self._hit()
            self.reply(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>\n", content_type="text/html")
            return
        if fault == "html200":
            self._hit()
            self.reply(200, MAINTENANCE_PAGE, content_type="text/html; charset=utf-8")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if fault == "norange" and headers.pop("Range", None) is not None:
            headers.pop("If-Range", None)
            self._hit()
        up = urlsplit(proxy.upstream)
        conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port, timeout=120)
        try:
            conn.request(self.command, up.path.rstrip("/") + self.path, headers=headers)
            resp = conn.getresponse()
            self._relay(resp, fault)
        finally:
            conn.close()

    def _relay(self, resp: http.client.HTTPResponse, fault: str | None) -> None:
        proxy = self.proxy
        length = int(resp.headers.get("Content-Length") or 0)
        ctype = resp.headers.get("Content-Type", "")
        is_file = (resp.status in (200, 206) and length >= FILE_MIN
                   and not ctype.startswith(("text/html", "application/json")))  # fmt: skip
        path = self.path.split("?", 1)[0]
        if is_file and resp.status == 200:
            with proxy.lock:
                proxy.state.counts.setdefault(path, PathCount()).size = length
        if fault == "xet" and (is_file or 300 <= resp.status < 400):
            self._hit()
            where = f"http://cas-bridge.xethub.invalid:{free_port()}/xet-bridge-us{path}"
            self.reply(302, b"", [("Location", where)], content_type="text/plain")
            return
        if is_file and fault == "lfs" and self.command == "GET":
            self._hit()
            body = resp.read()  # a pointer names the real bytes' hash and size, as a git checkout's does
            self.reply(200, lfs_pointer(body), content_type="text/plain; charset=utf-8")
            return
        cut: int | None = None
        if is_file and fault == "drop" and self.command == "GET":
            with proxy.lock:
                if path not in proxy.state.dropped:
                    proxy.state.dropped.add(path)
                    cut = length // 2
                    proxy.state.hits += 1
        self.send_response(resp.status, resp.reason)
        for k, v in resp.headers.items():
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        body_len = resp.headers.get("Content-Length")
        if body_len is not None:
            self.send_header("Content-Length", body_len)
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        sent, agent = 0, agent_name(self.headers.get("User-Agent", "")) + (RESUMED if resp.status == 206 else "")
        while True:
            want = _CHUNK if cut is None else min(_CHUNK, cut - sent)
            chunk = resp.read(want) if want > 0 else b""
            if not chunk:
                break
            self.write_body(chunk)
            sent += len(chunk)
            if is_file:
                with proxy.lock:
                    count = proxy.state.counts.setdefault(path, PathCount())
                    count.sent += len(chunk)
                    count.by_agent[agent] = count.by_agent.get(agent, 0) + len(chunk)
        if cut is not None:
            self.wfile.flush()
            self.close_connection = True  # the rest never comes: the client sees the body end early


@dataclass
class ChaosProxy(LocalServer):
    """A running proxy to ``upstream`` (``http://127.0.0.1:PORT[/prefix]``); ``name`` makes its DNS-fault host."""

    upstream: str = ""
    name: str = "mirror"
    slow_s: float = 3.0
    handler: type[Handler] = _ProxyHandler
    state: _State = field(default_factory=_State)

    def set_fault(self, fault: str | None) -> None:
        """Switch to one fault kind (or none); forgets what was counted and dropped."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        with self.lock:
            self.state = _State(fault=fault)
            self.requests.clear()

    @property
    def fault(self) -> str | None:
        return self.state.fault

    def mirror_url(self, path: str = "") -> str:
        """The URL a user's settings would hold for this mirror, with the URL faults applied."""
        if self.state.fault == "down":
            return f"http://127.0.0.1:{free_port()}{path}"
        if self.state.fault == "dns":
            return f"http://{self.name}.invalid:{self.port}{path}"
        return f"{self.url}{path}"

    def bytes_by_path(self) -> dict[str, PathCount]:
        with self.lock:
            return {p: PathCount(c.sent, c.size, dict(c.by_agent)) for p, c in self.state.counts.items()}

    @property
    def hits(self) -> int:
        return self.state.hits


def start_proxy(upstream: str, name: str, slow_s: float = 3.0) -> ChaosProxy:
    proxy = ChaosProxy(upstream=upstream, name=name, slow_s=slow_s)
    proxy.start()
    return proxy


__all__ = ["FAULTS", "URL_FAULTS", "ChaosProxy", "RESUMED", "PathCount", "agent_name", "installer_agent", "start_proxy"]
