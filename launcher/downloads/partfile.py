"""A download in progress on disk: ``NAME.part`` and what we know about it.

* ``NAME.part``       the bytes, written in place at their offsets (sparse);
* ``NAME.part.json``  the remote it came from (URL, size, ETag, sha256);
* ``NAME.part.log``   a journal: one ``start end`` line per finished span.
  Each connection appends a line after every :data:`JOURNAL_EVERY` bytes it
  wrote, so a ``kill -9`` loses at most that much per connection;
* ``NAME.part.lock``  locked (:mod:`filelock`) while a process downloads;
* ``NAME.part.pid``   the PID of that process, for the message a second one gets.

The PID lives in its own file: the lock file is opened by every contender,
and on Windows ``msvcrt.locking`` covers a byte range, so a lock file that
also held the PID would be read through (or written past) the locked byte.

The final name only ever appears by an atomic rename after verification.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import filelock

from bootstrap.atomic import write_atomic
from launcher.errors import DownloadLocked

JOURNAL_EVERY = 64 * 1024

Span = tuple[int, int]  # [start, end)


def merge(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def missing(done: list[Span], size: int) -> list[Span]:
    """The complement of ``done`` (merged) within [0, size)."""
    gaps: list[Span] = []
    pos = 0
    for start, end in done:
        if start > pos:
            gaps.append((pos, min(start, size)))
        pos = max(pos, end)
    if pos < size:
        gaps.append((pos, size))
    return [g for g in gaps if g[1] > g[0]]


@dataclass(frozen=True)
class Meta:
    url: str
    size: int | None
    etag: str | None
    last_modified: str | None
    sha256: str | None

    def same_file(self, other: Meta) -> bool:
        """Can bytes fetched for ``self`` be kept for ``other``?"""
        if self.size != other.size:
            return False
        if self.sha256 and other.sha256:
            return self.sha256 == other.sha256  # content-addressed: any mirror will do
        if self.url != other.url:
            return False
        if self.etag and other.etag:
            return self.etag == other.etag
        if self.last_modified and other.last_modified:
            return self.last_modified == other.last_modified
        return self.size is not None


class Lock(Protocol):
    """What :class:`PartFile` needs of a lock (a :class:`filelock.FileLock`, or a stand-in in tests)."""

    def acquire(self, timeout: float | None = None) -> object: ...
    def release(self) -> None: ...


def unlink_before_release(platform: str = sys.platform) -> bool:
    """Whether the holder removes the lock file itself, while it still holds the lock.

    POSIX: yes, or every finished download would leave ``NAME.part.lock``
    beside the model (filelock re-checks that the file it locked still has a
    name, so a contender that opened the old file tries again).  Windows: no,
    a file that is open cannot be deleted (WinError 32); filelock removes it
    there itself once it is unlocked and closed.
    """
    return platform != "win32"


def read_pid(path: Path) -> str:
    """The PID a holder wrote, or ``?`` (not written yet, or gone meanwhile)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        return "?"
    return text if text.isdigit() else "?"


class PartFile:
    """The files beside one download target."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.part = dest.with_name(dest.name + ".part")
        self.meta_path = dest.with_name(dest.name + ".part.json")
        self.journal = dest.with_name(dest.name + ".part.log")
        self.lock_path = dest.with_name(dest.name + ".part.lock")
        self.pid_path = dest.with_name(dest.name + ".part.pid")
        self._lock: Lock | None = None
        self.platform = sys.platform
        self._fd: int | None = None
        self._journal_fd: int | None = None
        self._write_lock = threading.Lock()

    # -- lock -------------------------------------------------------------
    def acquire(self, lock: Lock | None = None) -> None:
        """Hold the lock for this target, or raise DownloadLocked naming the holder."""
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        lock = lock if lock is not None else filelock.FileLock(str(self.lock_path), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            raise DownloadLocked(pid=read_pid(self.pid_path), dest=str(self.dest)) from None
        try:
            write_atomic(self.pid_path, str(os.getpid()), fsync=False)
        except BaseException:
            lock.release()
            raise
        self._lock = lock

    def release(self) -> None:
        self.close()
        lock, self._lock = self._lock, None
        if lock is None:
            return
        try:
            self.pid_path.unlink(missing_ok=True)
            if unlink_before_release(self.platform):
                self.lock_path.unlink(missing_ok=True)
        finally:
            lock.release()

    # -- state ------------------------------------------------------------
    def load(self) -> tuple[Meta | None, list[Span]]:
        """What a previous run left: its remote and the spans it finished."""
        try:
            data = json.loads(self.meta_path.read_text(encoding="utf-8"))
            meta = Meta(**{k: data.get(k) for k in Meta.__dataclass_fields__})
        except (OSError, ValueError, TypeError):
            return None, []
        if not self.part.exists():
            return meta, []
        spans: list[Span] = []
        try:
            for line in self.journal.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) == 2 and all(p.isdigit() for p in parts):  # a torn last line is ignored
                    spans.append((int(parts[0]), int(parts[1])))
        except OSError:
            pass
        size = self.part.stat().st_size
        return meta, merge((s, min(e, size)) for s, e in spans)

    def start(self, meta: Meta, keep: bool) -> None:
        """Open for writing; ``keep=False`` discards what a previous run left."""
        if not keep:
            self.discard()
        write_atomic(self.meta_path, json.dumps(asdict(meta), indent=1), fsync=False)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)
        self._fd = os.open(self.part, flags, 0o644)
        if meta.size is not None and os.fstat(self._fd).st_size < meta.size:
            os.ftruncate(self._fd, meta.size)  # sparse: space is taken as bytes arrive
        self._journal_fd = os.open(
            self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o644
        )

    def write_at(self, offset: int, data: bytes | memoryview) -> None:
        assert self._fd is not None
        if hasattr(os, "pwrite"):
            view = memoryview(data)
            while view:
                n = os.pwrite(self._fd, view, offset)
                view, offset = view[n:], offset + n
        else:  # pragma: no cover - Windows has no pwrite
            with self._write_lock:
                os.lseek(self._fd, offset, os.SEEK_SET)
                os.write(self._fd, bytes(data))

    def record(self, start: int, end: int) -> None:
        """Journal a finished span (after its bytes were written)."""
        if end > start and self._journal_fd is not None:
            os.write(self._journal_fd, f"{start} {end}\n".encode())

    def truncate_to(self, size: int) -> None:
        """For a stream of unknown length: the final size is where it ended."""
        assert self._fd is not None
        os.ftruncate(self._fd, size)

    def close(self) -> None:
        for name in ("_fd", "_journal_fd"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    def discard(self) -> None:
        self.close()
        for p in (self.part, self.meta_path, self.journal):
            p.unlink(missing_ok=True)

    def finish(self) -> None:
        """Move the verified bytes to the final name, atomically."""
        self.close()
        os.replace(self.part, self.dest)
        for p in (self.meta_path, self.journal):
            p.unlink(missing_ok=True)

    def describe(self) -> dict[str, Any]:
        meta, spans = self.load()
        return {"meta": asdict(meta) if meta else None, "done": sum(e - s for s, e in spans)}
