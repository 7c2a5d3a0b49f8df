"""Moving the bytes of one download: the connections, the spans, the journal.

:class:`Transfer` holds one attempt at one URL: the spans still missing, a
thread per connection, work stealing at the end, retries, and the stop
switch.  :func:`run_transfer` starts the threads and waits for them,
turning counts into progress events; :class:`PrefixHasher` hashes the
finished prefix meanwhile.  The engine (:mod:`launcher.downloads.engine`)
decides what to fetch and verifies the result.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from launcher.downloads.backoff import backoff, pause, retry_after
from launcher.downloads.partfile import JOURNAL_EVERY, Meta, PartFile, Span, missing
from launcher.downloads.progress import Meter, Progress
from launcher.errors import DownloadInterrupted
from launcher.mirrors.fallback import MirrorProblem, problem_for_exception, problem_for_status

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


class StatusProblem(MirrorProblem):
    """The server answered a failing HTTP status; ``status`` lets callers tell a dead link (404), a missing
    token (401) or an expired signed URL (403 after a redirect) from a mirror's trouble."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class RemoteChanged(Exception):
    """The file on the server changed while (or since) we were fetching it."""


@dataclass(frozen=True)
class Remote:
    url: str  # after redirects: where the bytes come from
    size: int | None
    etag: str | None
    last_modified: str | None
    ranges: bool


@dataclass
class Segment:
    pos: int  # next byte to write
    end: int  # exclusive; shrinks when another connection takes half
    recorded: int = field(init=False)

    def __post_init__(self) -> None:
        self.recorded = self.pos


CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _strong(etag: str | None) -> str | None:
    return etag if etag and not etag.startswith("W/") else None


class Transfer:
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
                if pause(exc.wait if exc.wait is not None else backoff(failures), self.stop, self.user_stop):
                    return  # stopped or paused during the wait: at once, not after it
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:  # fmt: skip
                if self.stop.is_set():
                    return
                failures += 1
                if failures > RETRIES:
                    raise MirrorProblem(
                        f"{problem_for_exception(exc) or 'connection failed'}, {RETRIES} retries"
                    ) from exc
                if pause(backoff(failures), self.stop, self.user_stop):
                    return
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
                    raise _Retry(problem, retry_after(resp.headers.get("Retry-After")))
                raise StatusProblem(resp.status_code, problem)
            if resp.status_code != 206:
                raise MirrorProblem(f"HTTP {resp.status_code}")
            m = CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
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
                if pause(backoff(failures), self.stop, self.user_stop):
                    return
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


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def run_transfer(run: Transfer, remote: Remote, meta: Meta, done: list[Span], first: requests.Response | None,
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
        percent = f"{100 * run.meter.done / total:.0f}%" if total else human_size(run.meter.done)
        raise DownloadInterrupted(percent=percent, dest=str(run.part.dest)) from None
    if run.failure is not None:
        raise run.failure
    if run.user_stop.is_set():
        total = meta.size or 0
        percent = f"{100 * run.meter.done / total:.0f}%" if total else human_size(run.meter.done)
        raise DownloadInterrupted(percent=percent, dest=str(run.part.dest))
    return used
