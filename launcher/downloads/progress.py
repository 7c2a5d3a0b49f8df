"""Progress of a download as events: bytes, speed and time left.

The engine calls :meth:`Meter.add` from its worker threads; the thread that
waits on them turns the counts into :class:`Progress` events for the CLI
(tqdm) and the TUI.  Speed is averaged over the last few seconds, so one
stalled connection does not make the estimate jump about.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

WINDOW_S = 5.0


@dataclass(frozen=True)
class Progress:
    done: int  # bytes present, counting what a previous run left
    total: int | None
    speed: float  # bytes per second, recent
    eta: float | None  # seconds, None when unknown
    connections: int
    stage: str = "download"  # download | verify | done

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


class Meter:
    def __init__(self, done: int, total: int | None) -> None:
        self._done = done
        self.total = total
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, int]] = deque([(time.monotonic(), done)])
        self.active = 0

    def add(self, n: int) -> None:
        with self._lock:
            self._done += n

    @property
    def done(self) -> int:
        with self._lock:
            return self._done

    def snapshot(self, stage: str = "download") -> Progress:
        now = time.monotonic()
        done = self.done
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > WINDOW_S:
            self._samples.popleft()
        t0, d0 = self._samples[0]
        speed = (done - d0) / (now - t0) if now > t0 else 0.0
        eta = (self.total - done) / speed if self.total is not None and speed > 0 else None
        return Progress(done, self.total, speed, eta, self.active, stage)
