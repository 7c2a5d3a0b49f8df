"""The download engine: several connections, resume across runs, verified.

One :func:`fetch` call downloads one URL to one destination:

1. A ``Range: bytes=0-0`` request learns the size, the ETag and whether the
   server honours ranges (following redirects, e.g. Hugging Face → its CDN).
2. What a previous run left (``NAME.part`` and its journal) is kept when it
   is the same remote file (same sha256, or same URL + ETag/size); else it
   starts over.
3. The missing spans are fetched by up to N connections.  A connection that
   finishes early takes half of the largest span still being fetched, so no
   single slow connection holds up the end.  Each connection retries with
   backoff on resets, timeouts, 429 and 5xx; every request carries
   ``If-Range`` so that a file changed on the server is noticed, and the
   download restarts.  Servers without Range support get one stream.
4. The first bytes are checked: an HTML or JSON error page, or a Git LFS
   pointer, is refused at once.
5. Size and sha256 are verified, and only then is ``NAME.part`` renamed to
   ``NAME``.  A truncated or unverified file never has the final name.

Errors the mirror is to blame for are raised as :class:`MirrorProblem`
subclasses (so the caller can fall back to the next mirror); the others are
typed Yijian errors: :class:`DiskFull`, :class:`DownloadInterrupted`, ...
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from launcher.downloads.backoff import Stopped, pause, retry_after
from launcher.downloads.partfile import Meta, PartFile
from launcher.downloads.progress import Meter, Progress
from launcher.downloads.redirects import headers_for
from launcher.downloads.transfer import (
    CONTENT_RANGE,
    TIMEOUT,
    USER_AGENT,
    PrefixHasher,
    ProgressHook,
    Remote,
    RemoteChanged,
    StatusProblem,
    Transfer,
    Validator,
    WrongContentProblem,
    human_size,
    run_transfer,
)
from launcher.errors import ChecksumMismatch, DiskFull, DownloadInterrupted, WrongContent
from launcher.mirrors.fallback import MirrorProblem, problem_for_exception, problem_for_status
from launcher.models.hashes import sha256_file


class VerifyProblem(MirrorProblem):
    def __init__(self, what: str, expected: str, actual: str, url: str) -> None:
        super().__init__(f"{what} mismatch")
        self.what, self.expected, self.actual, self.url = what, expected, actual, url


UNAUTHORIZED = "HTTP 401 (a token is needed, or the one sent was refused)"


@dataclass(frozen=True)
class Result:
    path: Path
    sha256: str
    size: int
    reused: int  # bytes a previous run had already fetched
    fetched: int  # bytes fetched by this run
    connections: int
    url: str


def redirect_guard(stay_within: Sequence[str]) -> Callable[..., None]:
    """A requests response hook: raise OffMirrorRedirect at a redirect whose Location leaves ``stay_within``."""
    from urllib.parse import urljoin

    from launcher.downloads.redirects import check_redirects

    def hook(resp: requests.Response, *args: object, **kwargs: object) -> None:
        if resp.is_redirect:
            target = urljoin(resp.url, resp.headers.get("Location", ""))
            try:
                check_redirects([target], stay_within)
            except MirrorProblem:
                resp.close()
                raise

    return hook


def default_validator(first: bytes) -> str | None:
    from launcher.models.safetensors_header import sniff_wrong_content

    return sniff_wrong_content(first)


INSPECT_TRIES = 3


def _first_answer(session: requests.Session, url: str, h: Mapping[str, str],
                  stop: threading.Event | None = None) -> requests.Response:  # fmt: skip
    """The first response, retried a little on resets, timeouts, 429 and 5xx; :class:`Stopped` if ``stop`` is set."""
    stops = (stop,) if stop is not None else ()
    for attempt in range(INSPECT_TRIES):
        last = attempt + 1 == INSPECT_TRIES
        try:
            resp = session.get(url, headers=dict(h), stream=True, timeout=TIMEOUT, allow_redirects=True)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            reason = problem_for_exception(exc) or "connection failed"
            if last or reason in ("DNS lookup failed", "connection refused"):
                raise MirrorProblem(reason) from exc
        else:
            problem = UNAUTHORIZED if resp.status_code == 401 else problem_for_status(resp.status_code)
            if problem is None:
                return resp
            resp.close()
            if last or not (resp.status_code == 429 or resp.status_code >= 500):
                raise StatusProblem(resp.status_code, problem)
            wait = retry_after(resp.headers.get("Retry-After"))
            if wait is not None:
                if pause(wait, *stops):
                    raise Stopped
                continue
        if pause(0.5 * 2**attempt, *stops):
            raise Stopped
    raise AssertionError("unreachable")


def inspect(session: requests.Session, url: str, headers: Mapping[str, str],
            stop: threading.Event | None = None) -> tuple[Remote, requests.Response | None]:  # fmt: skip
    """Size, validators and range support; a 200 answer is returned to be streamed."""
    h = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers, "Range": "bytes=0-0"}
    resp = _first_answer(session, url, h, stop)
    etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
    if resp.status_code == 206:
        m = CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        resp.close()
        if m and m.group(3) != "*":
            return Remote(resp.url, int(m.group(3)), etag, modified, True), None
        # A 206 without a usable Content-Range (seen on hf-mirror): stream it whole instead.
        h.pop("Range")
        resp = session.get(url, headers=h, stream=True, timeout=TIMEOUT)
    if resp.status_code == 416:  # a server that refuses every range: read it whole
        resp.close()
        h.pop("Range", None)
        resp = _first_answer(session, url, h, stop)
    length = resp.headers.get("Content-Length")
    size = int(length) if length and length.isdigit() else None
    return Remote(resp.url, size, resp.headers.get("ETag"), resp.headers.get("Last-Modified"), False), resp


def fetch(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    headers: Mapping[str, str] | None = None,
    connections: int = 8,
    on_progress: ProgressHook | None = None,
    stop: threading.Event | None = None,
    validator: Validator = default_validator,
    tick: float = 0.25,
    stay_within: Sequence[str] = (),
) -> Result:
    """Download ``url`` to ``dest`` (see the module docstring).

    Raises :class:`MirrorProblem` (or a subclass) for failures of the
    server, and Yijian errors for the rest.  The caller holds the target's
    lock; see :func:`launcher.downloads.download`.
    """
    sha256 = sha256.lower() if sha256 else None
    stop = stop or threading.Event()
    part = PartFile(dest)
    session = requests.Session()
    if stay_within:  # a redirect off the mirror (the Xet case) fails this source before it is followed
        session.hooks["response"].append(redirect_guard(stay_within))
    try:
        for attempt in range(3):
            try:
                remote, first = inspect(session, url, headers or {}, stop)
            except Stopped:
                raise DownloadInterrupted(percent=human_size(part.describe()["done"]), dest=str(dest)) from None
            if attempt == 2 and remote.ranges:
                # Its validators change on every request (some CDNs): ranges cannot be trusted, so one stream.
                remote = Remote(remote.url, remote.size, None, None, False)
            if size is not None and remote.size is not None and size != remote.size:
                if first is not None:
                    first.close()
                raise VerifyProblem("size", str(size), str(remote.size), remote.url)
            meta = Meta(url=url, size=remote.size if remote.size is not None else size, etag=remote.etag,
                        last_modified=remote.last_modified, sha256=sha256)  # fmt: skip
            old, done = part.load()
            keep = remote.ranges and old is not None and old.same_file(meta)
            part.start(meta, keep)
            done = done if keep else []
            have = sum(e - s for s, e in done)
            if meta.size is not None:
                free = shutil.disk_usage(dest.parent).free
                if free < meta.size - have:
                    if first is not None:
                        first.close()
                    raise DiskFull(need=human_size(meta.size - have), free=human_size(free), path=str(dest.parent))
            meter = Meter(have, meta.size)
            # A redirect to another host (a CDN, Civitai's signed URL) gets no credentials: they are the origin's.
            run = Transfer(part, remote, headers_for(url, remote.url, headers or {}), meter, validator, stop)
            hasher = PrefixHasher(part.part) if remote.ranges and meta.size is not None else None
            try:
                used = run_transfer(run, remote, meta, done, first, session, connections, on_progress, tick, hasher)
            except RemoteChanged:
                part.discard()
                continue
            except StatusProblem as exc:
                # A signed URL we were redirected to (Civitai's, valid about a day) expired during the transfer:
                # ask the origin again for a fresh one and go on with the bytes already written.
                if exc.status in (401, 403, 410) and remote.url != url and attempt < 2:
                    part.close()
                    continue
                raise
            except OSError as exc:
                if exc.errno == 28:  # ENOSPC
                    free = shutil.disk_usage(dest.parent).free
                    raise DiskFull(
                        need=human_size((meta.size or 0) - meter.done), free=human_size(free), path=str(dest.parent)
                    ) from exc
                raise
            except WrongContentProblem:
                part.discard()  # an error page is not worth keeping
                raise
            if on_progress:
                on_progress(Progress(meter.done, meta.size, 0.0, None, 0, "verify"))
            part.close()
            actual_size = part.part.stat().st_size
            if meta.size is not None and actual_size != meta.size:
                raise MirrorProblem(f"size {actual_size} after download, expected {meta.size}")
            digest = hasher.finish(actual_size) if hasher is not None else sha256_file(part.part)
            if sha256 and digest != sha256:
                part.discard()
                raise VerifyProblem("sha256", sha256, digest, remote.url)
            part.finish()
            if on_progress:
                on_progress(Progress(actual_size, actual_size, 0.0, 0.0, 0, "done"))
            return Result(dest, digest, actual_size, have, meter.done - have, used, remote.url)
        raise MirrorProblem("the file kept changing on the server")
    finally:
        session.close()
        part.close()


def as_user_error(problem: MirrorProblem, url: str, part: Path | None = None) -> Exception:
    """The Yijian error to show when the only source failed this way (``part``: the kept ``.part`` file)."""
    from launcher.errors import DownloadFailed

    if isinstance(problem, WrongContentProblem):
        zh = {"HTML page": "一个网页", "Git LFS pointer": "一个 Git LFS 指针文件", "JSON error": "一个 JSON 错误信息",
              "file that is not in the safetensors format": "一个不是 safetensors 格式的文件"}  # fmt: skip
        return WrongContent(what_zh=zh.get(problem.what, problem.what), what_en=f"a {problem.what}", url=problem.url)
    if isinstance(problem, VerifyProblem):
        return ChecksumMismatch(what=problem.what, expected=problem.expected, actual=problem.actual, url=problem.url)
    kept = part.stat().st_size if part is not None and part.is_file() else 0
    return DownloadFailed(url=url, reason=problem.reason, kept=kept, kept_human=human_size(kept), part=str(part))
