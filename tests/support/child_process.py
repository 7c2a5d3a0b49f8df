"""A child process (the runtime, the launcher) in a session of its own: wait for a line, stop it with its group."""

from __future__ import annotations

import os
import signal
import subprocess
import time


def wait_for(proc: subprocess.Popen[str], needle: str, timeout: float = 180) -> list[str]:
    """Read ``proc``'s output until a line holds ``needle``; the lines read (AssertionError with the tail if not)."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not seen; output:\n" + "\n".join(lines[-30:]))


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the process group, SIGKILL after 20 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
