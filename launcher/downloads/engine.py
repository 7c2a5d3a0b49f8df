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

import hashlib
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from launcher.downloads.partfile import JOURNAL_EVERY, Meta, PartFile, Span, missing
from launcher.downloads.progress import Meter, Progress
from launcher.errors import ChecksumMismatch, DiskFull, DownloadInterrupted, WrongContent
from launcher.mirrors.fallback import MirrorProblem, problem_for_exception, problem_for_status
from launcher.models.hashes import sha256_file

READ_SIZE = 64 * 1024
MIN_SPLIT = 1024 * 1024  # the initial plan never makes spans smaller than this
MIN_STEAL = 64 * 1024  # a connection that is done never takes less than this from another
RETRIES = 6  # per connection, for resets, timeouts, 429 and 5xx
TIMEOUT = (10.0, 30.0)  # connect, read
USER_AGENT = "yijian-downloader"

Validator = Callable[[bytes], str | None]
ProgressHook = Callable[[Progress], None]


class WrongContentProblem(MirrorProblem):
    """The server answered, but with a page or a pointer instead of the file."""

    def __init__(self, what: str, url: str) -> None:
        super().__init__(f"wrong content: {what}")
        self.what = what
        self.url = url


class VerifyProblem(MirrorProblem):
    def __init__(self, what: str, expected: str, actual: str, url: str) -> None:
        super().__init__(f"{what} mismatch")
        self.what, self.expected, self.actual, self.url = what, expected, actual, url


class RemoteChanged(Exception):
    """The file on the server changed while (or since) we were fetching it."""


@dataclass(frozen=True)
class Remote:
    url: str  # after redirects: where the bytes come from
    size: int | None
    etag: str | None
    last_modified: str | None
    ranges: bool


@dataclass(frozen=True)
class Result:
    path: Path
    sha256: str
    size: int
    reused: int  # bytes a previous run had already fetched
    fetched: int  # bytes fetched by this run
    connections: int
    url: str


@dataclass
class Segment:
    pos: int  # next byte to write
    end: int  # exclusive; shrinks when another connection takes half
    recorded: int = field(init=False)

    def __post_init__(self) -> None:
        self.recorded = self.pos


def _default_validator(first: bytes) -> str | None:
    from launcher.models.safetensors_header import sniff_wrong_content

    return sniff_wrong_content(first)


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _strong(etag: str | None) -> str | None:
    return etag if etag and not etag.startswith("W/") else None


class _Run:
    """One attempt at one URL: the threads, the shared state, the stop switch."""

    def __init__(self, part: PartFile, remote: Remote, headers: Mapping[str, str], meter: Meter,
                 validator: Validator, stop: threading.Event) -> None:  # fmt: skip
        self.part, self.remote, self.headers, self.meter = part, remote, dict(headers), meter
        self.validator, self.user_stop = validator, stop
        self.stop = threading.Event()  # this run's own switch: a failed run must not stop the next
        self.lock = threading.Lock()
        self.pending: list[Segment] = []
        self.active: list[Segment] = []
        self.failure: BaseException | None = None
        self.open_responses: set[requests.Response] = set()
        self.first_byte_s = 0.2  # running estimate of a request's wait for its first byte

    # -- scheduling -------------------------------------------------------
    def plan(self, gaps: list[Span], connections: int) -> int:
        segs = [Segment(s, e) for s, e in gaps]
        while len(segs) < connections:
            big = max(segs, key=lambda g: g.end - g.pos, default=None)
            if big is None or big.end - big.pos < 2 * MIN_SPLIT:
                break
            mid = big.pos + (big.end - big.pos) // 2
            segs.append(Segment(mid, big.end))
            big.end = mid
        self.pending = sorted(segs, key=lambda g: g.pos)
        return min(connections, len(self.pending))

    def next_segment(self) -> Segment | None:
        with self.lock:
            if self.pending:
                seg = self.pending.pop(0)
                self.active.append(seg)
                return seg
            busiest = max(self.active, key=lambda g: g.end - g.pos, default=None)
            if busiest is None or not self.worth_splitting(busiest.end - busiest.pos):
                return None
            mid = busiest.pos + (busiest.end - busiest.pos) // 2
            seg = Segment(mid, busiest.end)
            busiest.end = mid
            self.active.append(seg)
            return seg

    def worth_splitting(self, remaining: int) -> bool:
        """Is taking half of ``remaining`` quicker than leaving it to its connection?

        Half the span saves ``remaining / 2 / speed`` seconds and costs one more
        request (about one first-byte wait).  Near the end of a download this
        lets idle connections help with the last pieces instead of waiting.
        """
        if remaining < 2 * MIN_STEAL:
            return False
        speed = self.meter.snapshot().speed / max(1, len(self.active))
        if speed <= 0:
            return remaining >= 2 * MIN_SPLIT
        return remaining / 2 / speed > 2 * self.first_byte_s

    def note_first_byte(self, seconds: float) -> None:
        with self.lock:
            self.first_byte_s = 0.8 * self.first_byte_s + 0.2 * seconds

    def frontier(self, size: int) -> int:
        """Every byte before this position is written."""
        with self.lock:
            return min((g.pos for g in (*self.pending, *self.active)), default=size)

    def retire(self, seg: Segment) -> None:
        with self.lock:
            if seg in self.active:
                self.active.remove(seg)

    # -- transfer ---------------------------------------------------------
    def request_headers(self, seg: Segment) -> dict[str, str]:
        h = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **self.headers}
        h["Range"] = f"bytes={seg.pos}-{seg.end - 1}"
        validator = _strong(self.remote.etag) or self.remote.last_modified
        if validator:
            h["If-Range"] = validator
        return h

    def worker(self) -> None:
        session = requests.Session()
        try:
            while not self.stop.is_set():
                seg = self.next_segment()
                if seg is None:
                    return
                try:
                    self.fetch_segment(session, seg)
                finally:
                    self.retire(seg)
        except BaseException as exc:  # handed to the waiting thread
            with self.lock:
                if self.failure is None:
                    self.failure = exc
            self.stop.set()
        finally:
            session.close()

    def fetch_segment(self, session: requests.Session, seg: Segment) -> None:
        failures = 0
        while seg.pos < seg.end and not self.stop.is_set():
            try:
                self._stream(session, seg)
                if seg.pos < seg.end and not self.stop.is_set():
                    raise requests.exceptions.ChunkedEncodingError("the connection ended early")
            except _Retry as exc:
                failures += 1
                if failures > RETRIES:
                    raise MirrorProblem(f"{exc.reason}, {RETRIES} retries") from exc
                time.sleep(exc.wait if exc.wait is not None else min(8.0, 0.25 * 2**failures))
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:  # fmt: skip
                if self.stop.is_set():
                    return
                failures += 1
                if failures > RETRIES:
                    raise MirrorProblem(
                        f"{problem_for_exception(exc) or 'connection failed'}, {RETRIES} retries"
                    ) from exc
                time.sleep(min(8.0, 0.25 * 2**failures))
            finally:
                self.part.record(seg.recorded, seg.pos)
                seg.recorded = seg.pos

    def _stream(self, session: requests.Session, seg: Segment) -> None:
        asked = time.monotonic()
        resp = session.get(self.remote.url, headers=self.request_headers(seg), stream=True, timeout=TIMEOUT)
        self.note_first_byte(time.monotonic() - asked)
        with self.lock:
            self.open_responses.add(resp)
        try:
            if resp.status_code == 200:
                raise RemoteChanged("the server sent the whole file to a range request")
            problem = problem_for_status(resp.status_code)
            if problem is not None:
                if resp.status_code == 429 or resp.status_code >= 500:
                    retry_after = resp.headers.get("Retry-After", "")
                    raise _Retry(problem, float(retry_after) if retry_after.isdigit() else None)
                raise MirrorProblem(problem)
            if resp.status_code != 206:
                raise MirrorProblem(f"HTTP {resp.status_code}")
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if m and int(m.group(1)) != seg.pos:
                raise MirrorProblem("the server sent the wrong range")
            check = seg.pos == 0
            for piece in resp.iter_content(READ_SIZE):
                if check:
                    self._check_first(piece, resp)
                    check = False
                room = seg.end - seg.pos
                if room <= 0:
                    break
                if len(piece) > room:
                    piece = piece[:room]
                self.part.write_at(seg.pos, piece)
                seg.pos += len(piece)
                self.meter.add(len(piece))
                if seg.pos - seg.recorded >= JOURNAL_EVERY:
                    self.part.record(seg.recorded, seg.pos)
                    seg.recorded = seg.pos
                if seg.pos >= seg.end or self.stop.is_set():
                    break
        finally:
            with self.lock:
                self.open_responses.discard(resp)
            resp.close()

    def _check_first(self, first: bytes, resp: requests.Response) -> None:
        what = self.validator(first)
        if what is None and "text/html" in resp.headers.get("Content-Type", "") and first.lstrip()[:1] == b"<":
            what = "HTML page"
        if what is not None:
            raise WrongContentProblem(what, self.remote.url)

    def single_stream(self, first: requests.Response | None, session: requests.Session) -> None:
        """No Range support: one stream from the start, restarted if it breaks."""
        failures = 0
        while not self.stop.is_set():
            resp = first or session.get(self.remote.url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity",
                                                                  **self.headers}, stream=True, timeout=TIMEOUT)  # fmt: skip
            first = None
            pos = 0
            with self.lock:
                self.open_responses.add(resp)
            try:
                problem = problem_for_status(resp.status_code)
                if problem is not None:
                    raise MirrorProblem(problem)
                check = True
                for piece in resp.iter_content(READ_SIZE):
                    if check:
                        self._check_first(piece, resp)
                        check = False
                    self.part.write_at(pos, piece)
                    pos += len(piece)
                    self.meter.add(len(piece))
                    if self.stop.is_set():
                        return
                if self.remote.size is not None and pos < self.remote.size:
                    raise requests.exceptions.ChunkedEncodingError("the connection ended early")
                self.part.truncate_to(pos)
                self.part.record(0, pos)
                return
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:  # fmt: skip
                failures += 1
                self.meter.add(-pos)  # no ranges: what this stream wrote must be fetched again
                if failures > RETRIES or self.stop.is_set():
                    raise MirrorProblem(
                        f"{problem_for_exception(exc) or 'connection failed'} (no resume: the server ignores Range)"
                    ) from exc
                time.sleep(min(8.0, 0.25 * 2**failures))
            finally:
                with self.lock:
                    self.open_responses.discard(resp)
                resp.close()

    def abort_transfers(self) -> None:
        """Unblock workers stuck in a read (Ctrl-C, or another worker failed)."""
        with self.lock:
            responses = list(self.open_responses)
        for resp in responses:
            try:
                resp.close()
            except Exception:
                pass


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


INSPECT_TRIES = 3


def _first_answer(session: requests.Session, url: str, h: Mapping[str, str]) -> requests.Response:
    """The first response, retried a little on resets, timeouts, 429 and 5xx."""
    for attempt in range(INSPECT_TRIES):
        last = attempt + 1 == INSPECT_TRIES
        try:
            resp = session.get(url, headers=dict(h), stream=True, timeout=TIMEOUT, allow_redirects=True)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            reason = problem_for_exception(exc) or "connection failed"
            if last or reason in ("DNS lookup failed", "connection refused"):
                raise MirrorProblem(reason) from exc
        else:
            problem = problem_for_status(resp.status_code)
            if problem is None:
                return resp
            resp.close()
            if last or not (resp.status_code == 429 or resp.status_code >= 500):
                raise MirrorProblem(problem)
            retry_after = resp.headers.get("Retry-After", "")
            if retry_after.isdigit():
                time.sleep(min(30.0, float(retry_after)))
                continue
        time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


def inspect(session: requests.Session, url: str, headers: Mapping[str, str]) -> tuple[Remote, requests.Response | None]:
    """Size, validators and range support; a 200 answer is returned to be streamed."""
    h = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers, "Range": "bytes=0-0"}
    resp = _first_answer(session, url, h)
    etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
    if resp.status_code == 206:
        m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        resp.close()
        if m and m.group(3) != "*":
            return Remote(resp.url, int(m.group(3)), etag, modified, True), None
        # A 206 without a usable Content-Range (seen on hf-mirror): stream it whole instead.
        h.pop("Range")
        resp = session.get(url, headers=h, stream=True, timeout=TIMEOUT)
    if resp.status_code == 416:  # a server that refuses every range: read it whole
        resp.close()
        h.pop("Range", None)
        resp = _first_answer(session, url, h)
    length = resp.headers.get("Content-Length")
    size = int(length) if length and length.isdigit() else None
    return Remote(resp.url, size, resp.headers.get("ETag"), resp.headers.get("Last-Modified"), False), resp


class PrefixHasher:
    """sha256 of the file's complete prefix, kept up to date while the download runs.

    The bytes before the lowest position any connection still has to fill
    are final, so they can be hashed from the page cache during the
    download; at the end only the last piece is left to hash.  For a 2 GB
    checkpoint that turns seconds of "verifying" into almost nothing.
    """

    BLOCK = 1 << 20

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hash = hashlib.sha256()
        self.pos = 0

    def advance(self, upto: int, budget: int = 32 << 20) -> None:
        if upto <= self.pos:
            return
        end = min(upto, self.pos + budget)
        with open(self.path, "rb") as fh:
            fh.seek(self.pos)
            while self.pos < end:
                block = fh.read(min(self.BLOCK, end - self.pos))
                if not block:
                    return
                self.hash.update(block)
                self.pos += len(block)

    def finish(self, size: int) -> str:
        self.advance(size, budget=size)
        if self.pos != size:
            raise MirrorProblem(f"size {self.pos} after download, expected {size}")
        return self.hash.hexdigest()


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


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
    validator: Validator = _default_validator,
    tick: float = 0.25,
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
    try:
        for attempt in range(3):
            remote, first = inspect(session, url, headers or {})
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
                    raise DiskFull(need=_human(meta.size - have), free=_human(free), path=str(dest.parent))
            meter = Meter(have, meta.size)
            run = _Run(part, remote, headers or {}, meter, validator, stop)
            hasher = PrefixHasher(part.part) if remote.ranges and meta.size is not None else None
            try:
                used = _transfer(run, remote, meta, done, first, session, connections, on_progress, tick, hasher)
            except RemoteChanged:
                part.discard()
                continue
            except OSError as exc:
                if exc.errno == 28:  # ENOSPC
                    free = shutil.disk_usage(dest.parent).free
                    raise DiskFull(
                        need=_human((meta.size or 0) - meter.done), free=_human(free), path=str(dest.parent)
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


def _transfer(run: _Run, remote: Remote, meta: Meta, done: list[Span], first: requests.Response | None,
              session: requests.Session, connections: int, on_progress: ProgressHook | None, tick: float,
              hasher: PrefixHasher | None) -> int:  # fmt: skip
    """Run the workers until the file is complete; return how many connections were used."""
    if remote.ranges and meta.size is not None:
        if first is not None:
            first.close()
        gaps = missing(done, meta.size)
        used = run.plan(gaps, max(1, connections))
        threads = [threading.Thread(target=run.worker, daemon=True, name=f"yijian-dl-{i}") for i in range(used)]
    else:
        used = 1

        def single() -> None:
            try:
                run.single_stream(first, session)
            except BaseException as exc:
                run.failure = exc
                run.stop.set()

        threads = [threading.Thread(target=single, daemon=True, name="yijian-dl-0")]
    run.meter.active = len(threads)
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(tick / max(1, len(threads)))
            if on_progress:
                on_progress(run.meter.snapshot())
            if hasher is not None and meta.size is not None:
                hasher.advance(run.frontier(meta.size))
            if run.user_stop.is_set():
                run.stop.set()
            if run.failure is not None or run.stop.is_set():
                run.abort_transfers()
    except KeyboardInterrupt:
        run.stop.set()
        run.abort_transfers()
        for t in threads:
            t.join(5)
        total = meta.size or 0
        percent = f"{100 * run.meter.done / total:.0f}%" if total else _human(run.meter.done)
        raise DownloadInterrupted(percent=percent, dest=str(run.part.dest)) from None
    if run.failure is not None:
        raise run.failure
    if run.user_stop.is_set():
        total = meta.size or 0
        percent = f"{100 * run.meter.done / total:.0f}%" if total else _human(run.meter.done)
        raise DownloadInterrupted(percent=percent, dest=str(run.part.dest))
    return used


def as_user_error(problem: MirrorProblem, url: str) -> Exception:
    """The Yijian error to show when the only source failed this way."""
    from launcher.errors import DownloadFailed

    if isinstance(problem, WrongContentProblem):
        zh = {"HTML page": "一个网页", "Git LFS pointer": "一个 Git LFS 指针文件", "JSON error": "一个 JSON 错误信息"}
        return WrongContent(what_zh=zh.get(problem.what, problem.what), what_en=f"a {problem.what}", url=problem.url)
    if isinstance(problem, VerifyProblem):
        return ChecksumMismatch(what=problem.what, expected=problem.expected, actual=problem.actual, url=problem.url)
    return DownloadFailed(url=url, reason=problem.reason)
