"""Waiting between retries: how long (``Retry-After``, capped; exponential back-off) and a wait a stop ends.

A download that is paused or stopped must not sit out a 30-second back-off:
every wait here watches the stop events and returns as soon as one is set.
"""

from __future__ import annotations

import email.utils
import threading
import time
from datetime import timezone

MAX_RETRY_AFTER = 30.0  # a server may ask for an hour; a mirror that slow is better given up for the next one
MAX_BACKOFF = 8.0
SLICE = 0.05  # how often a wait looks at the stop events other than the first


class Stopped(Exception):
    """A stop or pause arrived during a wait."""


def retry_after(value: str | None, now: float | None = None, cap: float = MAX_RETRY_AFTER) -> float | None:
    """The seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), within [0, cap].

    None when there is no header or it cannot be read (the caller backs off as usual).
    """
    text = (value or "").strip()
    if not text:
        return None
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, min(cap, seconds))


def backoff(failures: int, base: float = 0.25, cap: float = MAX_BACKOFF) -> float:
    """Exponential back-off after ``failures`` failed tries, at most ``cap`` seconds."""
    return min(cap, base * 2.0**failures)


def pause(seconds: float, *stops: threading.Event) -> bool:
    """Wait ``seconds`` unless one of ``stops`` is set first; True when one was (then return at once)."""
    deadline = time.monotonic() + max(0.0, seconds)
    if not stops:
        time.sleep(max(0.0, seconds))
        return False
    while True:
        if any(e.is_set() for e in stops):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        stops[0].wait(min(left, SLICE) if len(stops) > 1 else left)
