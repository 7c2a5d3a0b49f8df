"""bootstrap.proc: argv lists, UTF-8 with replacement, timeouts, Windows flags and the clean stop."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bootstrap import proc
from bootstrap.errors import ExitCode
from runtime import lifeline

PY = sys.executable


def test_a_command_string_is_refused() -> None:
    with pytest.raises(TypeError, match="list of arguments"):
        proc.run("echo hi", timeout=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        proc.argv_list([])
    assert proc.argv_list([Path("/a b/python"), "-c"]) == [str(Path("/a b/python")), "-c"]


def test_output_that_is_not_utf8_is_replaced_not_raised() -> None:
    # what a cp936 console prints: GBK bytes for 中文, then a line end Windows-style
    code = "import sys; sys.stdout.buffer.write('中文'.encode('gbk') + b' ok\\r\\n'); sys.stderr.buffer.write(b'\\xff')"
    done = proc.run([PY, "-c", code], timeout=30)
    assert done.returncode == 0
    assert done.stdout.endswith(" ok\r\n") or done.stdout.endswith(" ok\n")
    assert "\ufffd" in done.stdout and done.stderr == "\ufffd"
    assert proc.decode(b"\xd6\xd0 ok\r\n") == "\ufffd\ufffd ok\n"


def test_utf8_output_is_read_as_utf8_whatever_the_locale() -> None:
    env = {**os.environ, "LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": "utf-8"}
    done = proc.run([PY, "-c", "print('模型 ✓')"], timeout=30, env=env)
    assert done.stdout.strip() == "模型 ✓"


def test_a_child_past_its_timeout_is_killed() -> None:
    t0 = time.monotonic()
    with pytest.raises(proc.TimeoutExpired):
        proc.run([PY, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert time.monotonic() - t0 < 10


def test_stdin_is_closed_unless_given() -> None:
    done = proc.run([PY, "-c", "import sys; print(repr(sys.stdin.read()))"], timeout=30)
    assert done.stdout.strip() == "''"
    done = proc.run([PY, "-c", "import sys; print(sys.stdin.read().upper())"], timeout=30, stdin_text="abc")
    assert done.stdout.strip() == "ABC"


def test_start_reads_lines_as_they_come() -> None:
    child = proc.start([PY, "-c", "import sys; print('一'); sys.stdout.flush(); sys.stdout.buffer.write(b'\\xfe\\n')"])
    assert child.stdout is not None
    assert [line.rstrip("\n") for line in child.stdout] == ["一", "\ufffd"]
    assert child.wait(30) == 0


def test_windows_flags() -> None:
    assert proc.creation_flags("linux") == 0
    assert proc.creation_flags("linux", new_group=True) == 0  # POSIX children stay in the launcher's group
    assert proc.creation_flags("win32") == proc.CREATE_NO_WINDOW
    assert proc.creation_flags("win32", window=True) == 0
    # Ctrl+Break reaches only a child that shares the console: its own group, but no CREATE_NO_WINDOW
    assert proc.creation_flags("win32", new_group=True) == proc.CREATE_NEW_PROCESS_GROUP
    assert proc.creation_flags("win32", window=True, new_group=True) == proc.CREATE_NEW_PROCESS_GROUP
    # the values Windows defines (winbase.h / wincon.h), as the subprocess module names them there
    assert (proc.CREATE_NO_WINDOW, proc.CREATE_NEW_PROCESS_GROUP, proc.CTRL_BREAK_EVENT) == (0x08000000, 0x200, 1)
    for name in ("CREATE_NO_WINDOW", "CREATE_NEW_PROCESS_GROUP"):
        if hasattr(subprocess, name):
            assert getattr(subprocess, name) == getattr(proc, name)


class FakeChild:
    """A child that ignores or obeys the polite stop."""

    def __init__(self, obeys: bool) -> None:
        self.obeys, self.calls, self.code = obeys, [], None  # type: ignore[var-annotated]

    def poll(self) -> int | None:
        return self.code

    def send_signal(self, sig: int) -> None:
        self.calls.append(("signal", sig))
        if self.obeys:
            self.code = 0

    def wait(self, timeout: float | None = None) -> int:
        self.calls.append(("wait", timeout))
        if self.code is None:
            raise subprocess.TimeoutExpired("x", timeout or 0)
        return self.code

    def kill(self) -> None:
        self.calls.append(("kill", None))
        self.code = -9


def test_windows_stop_is_ctrl_break_then_terminate() -> None:
    child = FakeChild(obeys=False)
    assert proc.stop(child, 3.0, platform="win32") == -9
    assert child.calls == [("signal", proc.CTRL_BREAK_EVENT), ("wait", 3.0), ("kill", None), ("wait", None)]
    child = FakeChild(obeys=True)
    assert proc.stop(child, 3.0, platform="win32") == 0
    assert child.calls == [("signal", proc.CTRL_BREAK_EVENT), ("wait", 3.0)]


def test_posix_stop_is_sigterm_then_kill() -> None:
    child = FakeChild(obeys=False)
    proc.stop(child, 2.0, platform="linux")
    assert child.calls[0] == ("signal", int(signal.SIGTERM)) and ("kill", None) in child.calls
    done = FakeChild(obeys=True)
    done.code = 3
    assert proc.stop(done, 2.0, platform="linux") == 3 and done.calls == []


def test_stop_a_real_child_that_ignores_sigterm() -> None:
    code = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    child = proc.start([PY, "-c", code])
    assert child.stdout is not None and child.stdout.readline().strip() == "up"
    t0 = time.monotonic()
    assert proc.stop(child, 0.5) == -signal.SIGKILL
    assert time.monotonic() - t0 < 10


def test_lifeline_is_off_unless_asked() -> None:
    assert not lifeline.wanted({})
    assert lifeline.wanted({proc.LIFELINE_ENV: proc.LIFELINE_STDIN})
    assert lifeline.start_if_wanted({}) is None


def test_lifeline_fires_when_the_pipe_ends() -> None:
    r, w = os.pipe()
    gone = threading.Event()
    with open(r, "rb", buffering=0) as stream:
        thread = lifeline.watch(stream, gone.set)
        os.write(w, b"anything the parent writes is ignored\n")
        assert not gone.wait(0.3)
        os.close(w)  # the launcher died
        assert gone.wait(5)
        thread.join(5)


def test_lifeline_stop_interrupts_then_exits_hard(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []
    interrupts: list[int] = []
    monkeypatch.setattr(lifeline._thread, "interrupt_main", lambda sig: interrupts.append(sig))
    lifeline.stop_now(grace=0.2, hard_exit=exits.append)
    assert interrupts == [signal.SIGINT]
    deadline = time.monotonic() + 5
    while not exits and time.monotonic() < deadline:
        time.sleep(0.05)
    assert exits == [int(ExitCode.INTERRUPTED)]


def test_lifeline_read_error_counts_as_gone() -> None:
    stream = io.BytesIO(b"x")
    stream.close()
    lifeline.wait_for_eof(stream)  # returns instead of raising


def test_every_subprocess_goes_through_the_helper() -> None:
    """Nothing in bootstrap/, launcher/ or runtime/ but bootstrap/proc.py imports subprocess (or spawns otherwise)."""
    import ast

    root = Path(proc.__file__).resolve().parent.parent
    offenders = []
    for layer in ("bootstrap", "launcher", "runtime"):
        for path in (root / layer).rglob("*.py"):
            if path == Path(proc.__file__).resolve():
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
                    names = [f"os.{node.attr}"] if node.attr.startswith(("spawn", "popen", "system")) else []
                if any(n == "subprocess" or n.startswith(("subprocess.", "os.")) for n in names):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")  # type: ignore[attr-defined]
    assert offenders == []
