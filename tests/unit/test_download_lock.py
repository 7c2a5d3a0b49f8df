"""The download lock (filelock) and the PID beside it, including the Windows order of release."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.downloads.partfile import PartFile, read_pid, unlink_before_release
from launcher.errors import DownloadLocked
from tests.support.hermetic import REPO

HOLD = """
import sys, time
from pathlib import Path
from launcher.downloads.partfile import PartFile
part = PartFile(Path(sys.argv[1]))
part.acquire()
print("held", flush=True)
sys.stdin.readline()
part.release()
print("released", flush=True)
"""


def test_a_second_process_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    dest = tmp_path / "models" / "m.safetensors"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(dest)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)  # fmt: skip
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DownloadLocked) as info:
            PartFile(dest).acquire()
        assert str(holder.pid) in info.value.message("en")
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        assert holder.wait(30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
    part = PartFile(dest)
    part.acquire()  # free again
    assert read_pid(part.pid_path) == str(os.getpid())
    part.release()
    assert not part.lock_path.exists() and not part.pid_path.exists()  # nothing left beside the model


def test_a_second_partfile_in_the_same_process_is_refused(tmp_path: Path) -> None:
    first = PartFile(tmp_path / "a.bin")
    first.acquire()
    try:
        with pytest.raises(DownloadLocked) as info:
            PartFile(tmp_path / "a.bin").acquire()
        assert str(os.getpid()) in info.value.message("en")
    finally:
        first.release()


def test_the_lock_file_holds_no_pid(tmp_path: Path) -> None:
    # msvcrt.locking locks a byte range of the lock file: the PID must not be in that file
    part = PartFile(tmp_path / "a.bin")
    part.acquire()
    try:
        assert part.lock_path.exists() and part.pid_path.read_text(encoding="utf-8") == str(os.getpid())
        assert str(os.getpid()) not in part.lock_path.read_bytes().decode("latin-1")
    finally:
        part.release()


def test_pid_read_safely() -> None:
    assert read_pid(Path("/nonexistent/x.pid")) == "?"


def test_pid_garbage_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "x.pid").write_bytes(b"\xff\x00garbage")
    assert read_pid(tmp_path / "x.pid") == "?"


class RecordingLock:
    def __init__(self, path: Path) -> None:
        self.path, self.events = path, []  # type: ignore[var-annotated]

    def acquire(self, timeout: float | None = None) -> object:
        self.path.write_bytes(b"")  # what filelock does: the lock file exists while held
        self.events.append(("acquire", timeout))
        return self

    def release(self) -> None:
        self.events.append(("release", "lock file exists" if self.path.exists() else "lock file gone"))


@pytest.mark.parametrize(("platform", "at_release"), [("win32", "lock file exists"), ("linux", "lock file gone")])
def test_release_order(tmp_path: Path, platform: str, at_release: str) -> None:
    # Windows: deleting the open lock file is WinError 32, so it stays until filelock has unlocked and closed it
    part = PartFile(tmp_path / "a.bin")
    part.platform = platform
    lock = RecordingLock(part.lock_path)
    part.acquire(lock)
    assert lock.events == [("acquire", 0)]
    part.release()
    assert lock.events[-1] == ("release", at_release)
    assert not part.pid_path.exists()
    assert unlink_before_release("win32") is False and unlink_before_release("linux") is True
