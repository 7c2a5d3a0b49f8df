"""The runtime ends with the launcher that started it.

The launcher gives the runtime a pipe on stdin that it never writes to, and
sets ``YIJIAN_LIFELINE=stdin`` (:data:`bootstrap.proc.LIFELINE_ENV`).  When
the launcher exits, however it dies (``kill -9``, a closed console window on
Windows), the pipe ends: a thread here reads that end-of-file, asks the main
thread to stop as Ctrl+C would (uvicorn shuts down, the port and the VRAM are
freed) and, if that has not ended the process within :data:`GRACE` seconds,
exits hard.  Started by hand, without the variable, nothing watches stdin.
"""

from __future__ import annotations

import _thread
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from typing import IO

from bootstrap.errors import ExitCode
from bootstrap.proc import LIFELINE_ENV, LIFELINE_STDIN

GRACE = 5.0

log = logging.getLogger("yijian.runtime")


def wanted(environ: Mapping[str, str]) -> bool:
    return environ.get(LIFELINE_ENV) == LIFELINE_STDIN


def wait_for_eof(stream: IO[bytes]) -> None:
    """Return once ``stream`` ends (or can no longer be read); whatever arrives meanwhile is ignored."""
    try:
        while stream.read(1024):
            pass
    except (OSError, ValueError):
        pass


def stop_now(grace: float = GRACE, hard_exit: Callable[[int], object] = os._exit) -> None:
    """Stop the process as Ctrl+C does; exit hard after ``grace`` seconds if that did not end it."""
    log.warning("The launcher that started this runtime is gone: stopping. (启动器已退出，生成界面随之关闭。)")
    timer = threading.Timer(grace, hard_exit, args=(int(ExitCode.INTERRUPTED),))
    timer.daemon = True
    timer.start()
    _thread.interrupt_main(signal.SIGINT)


def watch(stream: IO[bytes], on_gone: Callable[[], None] = stop_now) -> threading.Thread:
    """Call ``on_gone`` in a daemon thread once ``stream`` ends."""

    def run() -> None:
        wait_for_eof(stream)
        on_gone()

    thread = threading.Thread(target=run, name="lifeline", daemon=True)
    thread.start()
    return thread


def start_if_wanted(environ: Mapping[str, str] | None = None) -> threading.Thread | None:
    """Watch stdin when the launcher asked for it (:func:`wanted`)."""
    if not wanted(os.environ if environ is None else environ) or sys.stdin is None:
        return None
    return watch(sys.stdin.buffer)
