"""Stage 0's lock (bootstrap.launcher_env.exclusive): one first start at a time, on POSIX and (simulated) Windows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bootstrap.launcher_env import LK_LOCK, LK_UNLCK, exclusive, lock_byte_zero
from tests.support.hermetic import REPO


class FakeLocking:
    """msvcrt.locking as Windows behaves: from the current position; LK_LOCK gives up with OSError."""

    def __init__(self, busy: int = 0) -> None:
        self.calls: list[tuple[int, int, int]] = []  # (mode, nbytes, position)
        self.busy = busy

    def __call__(self, fd: int, mode: int, nbytes: int) -> None:
        self.calls.append((mode, nbytes, os.lseek(fd, 0, os.SEEK_CUR)))
        if mode == LK_LOCK and self.busy:
            self.busy -= 1
            raise OSError(36, "Resource deadlock avoided")


def test_windows_locks_and_unlocks_byte_zero_even_in_a_file_with_content(tmp_path: Path) -> None:
    lock = tmp_path / "env" / ".launcher.lock"
    lock.parent.mkdir()
    lock.write_bytes(b"left by an older version")  # append mode would start at byte 24
    locking = FakeLocking()
    with exclusive(lock, platform="win32", locking=locking):
        assert locking.calls == [(LK_LOCK, 1, 0)]
    assert locking.calls == [(LK_LOCK, 1, 0), (LK_UNLCK, 1, 0)]
    assert lock.read_bytes() == b"left by an older version"  # never written, never deleted


def test_windows_waits_past_lk_locks_own_timeout(tmp_path: Path) -> None:
    waits: list[float] = []
    locking = FakeLocking(busy=3)
    with open(tmp_path / "l", "a+b") as fh:
        lock_byte_zero(fh, locking, wait=waits.append)
    assert waits == [0.5, 0.5, 0.5]
    assert [c[2] for c in locking.calls] == [0, 0, 0, 0]


def test_posix_second_start_waits_for_the_first(tmp_path: Path) -> None:
    lock = tmp_path / ".launcher.lock"
    code = (
        "import sys, time; from pathlib import Path; from bootstrap.launcher_env import exclusive\n"
        "with exclusive(Path(sys.argv[1])):\n    print('in', flush=True); time.sleep(float(sys.argv[2]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen([sys.executable, "-c", code, str(lock), "1.5"], stdout=subprocess.PIPE, text=True, env=env)
    assert first.stdout is not None and first.stdout.readline().strip() == "in"
    t0 = time.monotonic()
    with exclusive(lock):
        waited = time.monotonic() - t0
    assert first.wait(30) == 0
    assert waited > 0.5
