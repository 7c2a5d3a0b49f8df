"""What the engine is doing now: for the UI's progress bar and ``GET /sdapi/v1/progress``.

One :class:`Progress` per engine, written by the generating thread and read
by any other; a lock keeps a reader from seeing half an update.  The
interrupt flag lives here too, so "stop" works from the UI, the API and
Ctrl-C alike, between two sampling steps; so does A1111's "skip" (end the
current batch's sampling and go on with the next).  The latents of the last
step are kept (a reference, every ``preview_every`` steps) for live previews.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Snapshot:
    active: bool
    job: str
    job_count: int
    job_no: int  # 0-based index of the current batch
    sampling_step: int
    sampling_steps: int
    fraction: float
    eta_seconds: float | None
    interrupted: bool
    started: float | None  # wall-clock time.time() of the job's start
    skipped: bool = False

    def to_a1111(self) -> dict[str, object]:
        """The body of A1111's ``GET /sdapi/v1/progress``."""
        return {
            "progress": round(self.fraction, 4),
            "eta_relative": round(self.eta_seconds, 2) if self.eta_seconds is not None else 0.0,
            "state": {
                "skipped": self.skipped,
                "interrupted": self.interrupted,
                "stopping_generation": self.interrupted,
                "job": self.job,
                "job_count": self.job_count,
                "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(self.started or time.time())),
                "job_no": self.job_no,
                "sampling_step": self.sampling_step,
                "sampling_steps": self.sampling_steps,
            },
            "current_image": None,
            "textinfo": None,
        }


class Progress:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._active = False
        self._job = ""
        self._job_count = 0
        self._job_no = 0
        self._step = 0
        self._steps = 0
        self._passes = 1  # sampling passes per batch (2 with hires fix)
        self._pass = 0
        self._started: float | None = None  # time.monotonic(), for the ETA
        self._started_wall: float | None = None  # time.time(), for job_timestamp
        self._skip = threading.Event()
        self._latents: Any = None
        self._latents_step = 0
        self._architecture = "sd15"
        self.preview_every = 10  # A1111's show_progress_every_n_steps (-1: no previews while sampling)

    # --- written by the generating thread ---------------------------------------------------------------------
    def begin(self, job: str, job_count: int, passes: int = 1, architecture: str = "sd15") -> None:
        with self._lock:
            self._stop.clear()
            self._skip.clear()
            self._active, self._job, self._job_count, self._job_no = True, job, job_count, 0
            self._passes, self._pass, self._step, self._steps = passes, 0, 0, 0
            self._started, self._started_wall = time.monotonic(), time.time()
            self._latents, self._latents_step, self._architecture = None, 0, architecture

    def batch(self, job_no: int, pass_no: int, steps: int) -> None:
        with self._lock:
            self._job_no, self._pass, self._step, self._steps = job_no, pass_no, 0, steps
            self._latents_step = 0

    def position(self) -> tuple[int, int]:
        """(steps done, steps) of the pass running now: ControlNet's start/end window reads it."""
        with self._lock:
            return self._step, self._steps

    def step(self, done: int) -> None:
        with self._lock:
            self._step = done

    def preview(self, done: int, latents: Any) -> None:
        """Keep the latents after step ``done`` for the live preview, every ``preview_every`` steps (A1111's)."""
        with self._lock:
            every = self.preview_every
            if latents is not None and every > 0 and done - self._latents_step >= every:
                self._latents, self._latents_step = latents, done

    def preview_latents(self) -> tuple[Any, str] | None:
        """The first image's latents of the last preview step and the model's architecture (None: none yet)."""
        with self._lock:
            if not self._active or self._latents is None:
                return None
            return self._latents[0], self._architecture

    def batch_done(self) -> None:
        """A batch ended: a skip applied to it only."""
        self._skip.clear()

    def end(self) -> None:
        with self._lock:
            self._active = False

    # --- read and signalled from anywhere ---------------------------------------------------------------------
    def interrupt(self) -> None:
        self._stop.set()

    def skip(self) -> None:
        """A1111's skip: the batch being sampled ends now (its images are kept), the next ones run."""
        if self._active:
            self._skip.set()

    @property
    def skipped(self) -> bool:
        return self._skip.is_set()

    @property
    def interrupted(self) -> bool:
        return self._stop.is_set()

    def snapshot(self) -> Snapshot:
        with self._lock:
            if not self._active or not self._job_count:
                return Snapshot(False, self._job, 0, 0, 0, 0, 0.0, None, self._stop.is_set(), self._started_wall)
            per_batch = 1.0 / self._job_count
            within = (self._pass + (self._step / self._steps if self._steps else 0.0)) / self._passes
            fraction = min(1.0, per_batch * (self._job_no + within))
            elapsed = time.monotonic() - (self._started or time.monotonic())
            eta = elapsed / fraction - elapsed if fraction > 0.01 else None
            return Snapshot(True, self._job, self._job_count, self._job_no, self._step, self._steps, fraction, eta,
                            self._stop.is_set(), self._started_wall, self._skip.is_set())  # fmt: skip
