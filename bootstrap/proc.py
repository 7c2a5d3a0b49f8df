"""Starting other programs: the one way every layer runs a subprocess.

* argv lists only: a shell string is refused (a path with spaces or quotes
  must never be re-split by a shell);
* text is read as UTF-8 with replacement, whatever the console's code page
  (cp936 on a Chinese Windows), so a stray byte never raises;
* :func:`run` takes an explicit ``timeout`` at every call site (None only
  where waiting as long as it takes is the point, e.g. an install);
* no console window flashes up on Windows (``CREATE_NO_WINDOW``) unless the
  caller asks for one; a long-running child that must be stopped cleanly gets
  its own process group (``CREATE_NEW_PROCESS_GROUP``) so that
  ``CTRL_BREAK_EVENT`` reaches it and nobody else (:func:`stop`);
* stdin is ``/dev/null`` unless given: no child waits on the user's keyboard.

The Windows decisions are small functions of ``platform`` so the tests run
them here, where there is no Windows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any, Protocol

PIPE = subprocess.PIPE
STDOUT = subprocess.STDOUT
DEVNULL = subprocess.DEVNULL
TimeoutExpired = subprocess.TimeoutExpired
SubprocessError = subprocess.SubprocessError
CompletedProcess = subprocess.CompletedProcess
Popen = subprocess.Popen

# Windows process creation flags (winbase.h); the subprocess module only defines them on Windows.
CREATE_NEW_PROCESS_GROUP = 0x00000200
CREATE_NO_WINDOW = 0x08000000
CTRL_BREAK_EVENT = 1  # wincon.h; signal.CTRL_BREAK_EVENT on Windows

ENCODING = "utf-8"
ERRORS = "replace"

Arg = str | os.PathLike[str]
Stream = int | IO[Any] | None


def argv_list(argv: Sequence[Arg]) -> list[str]:
    """``argv`` as a list of str; a single string (a shell command line) is a programming error."""
    if isinstance(argv, (str, bytes)):
        raise TypeError(f"argv must be a list of arguments, not a command string: {argv!r}")
    out = [os.fspath(a) for a in argv]
    if not out:
        raise ValueError("argv is empty")
    return out


def creation_flags(platform: str = sys.platform, *, window: bool = False, new_group: bool = False) -> int:
    """The ``creationflags`` for a child on ``platform`` (0 everywhere but Windows).

    A child in its own group cannot get ``CREATE_NO_WINDOW``: ``CTRL_BREAK_EVENT``
    only reaches processes attached to the sender's console.
    """
    if platform != "win32":
        return 0
    flags = 0
    if new_group:
        flags |= CREATE_NEW_PROCESS_GROUP
    elif not window:
        flags |= CREATE_NO_WINDOW
    return flags


def decode(data: bytes | str | None) -> str:
    """Bytes a child printed as text: UTF-8, undecodable bytes replaced, Windows line ends made ``\\n``."""
    if data is None:
        return ""
    text = data if isinstance(data, str) else data.decode(ENCODING, ERRORS)
    return text.replace("\r\n", "\n")


def run(argv: Sequence[Arg], *, timeout: float | None, env: Mapping[str, str] | None = None,
        cwd: Arg | None = None, stdin: Stream = DEVNULL, stdout: Stream = PIPE, stderr: Stream = PIPE,
        stdin_text: str | None = None, window: bool = False, check: bool = False) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run to the end and return its output as text; a child still running at ``timeout`` is killed.

    Raises OSError (the program could not be started), :class:`TimeoutExpired`
    and, with ``check``, :class:`subprocess.CalledProcessError`, as
    :func:`subprocess.run` does.
    """
    return subprocess.run(
        argv_list(argv), timeout=timeout, env=None if env is None else dict(env),
        cwd=None if cwd is None else os.fspath(cwd), stdin=None if stdin_text is not None else stdin, stdout=stdout,
        stderr=stderr, input=stdin_text, text=True, encoding=ENCODING, errors=ERRORS, check=check,
        creationflags=creation_flags(window=window),
    )  # fmt: skip


def _popen(argv: Sequence[Arg], text: bool, env: Mapping[str, str] | None, cwd: Arg | None, stdin: Stream,
           stdout: Stream, stderr: Stream, window: bool, new_group: bool) -> subprocess.Popen[Any]:  # fmt: skip
    coding: dict[str, Any] = {"text": True, "encoding": ENCODING, "errors": ERRORS} if text else {}
    return subprocess.Popen(
        argv_list(argv), env=None if env is None else dict(env), cwd=None if cwd is None else os.fspath(cwd),
        stdin=stdin, stdout=stdout, stderr=stderr, creationflags=creation_flags(window=window, new_group=new_group),
        **coding,
    )  # fmt: skip


def start(argv: Sequence[Arg], *, env: Mapping[str, str] | None = None, cwd: Arg | None = None,
          stdin: Stream = DEVNULL, stdout: Stream = PIPE, stderr: Stream = STDOUT, window: bool = False,
          new_group: bool = False) -> subprocess.Popen[str]:  # fmt: skip
    """Start a child whose output is read as it comes (text, UTF-8 with replacement)."""
    child: subprocess.Popen[str] = _popen(argv, True, env, cwd, stdin, stdout, stderr, window, new_group)
    return child


def start_bytes(argv: Sequence[Arg], *, env: Mapping[str, str] | None = None, cwd: Arg | None = None,
                stdin: Stream = DEVNULL, stdout: Stream = PIPE, stderr: Stream = STDOUT, window: bool = False,
                new_group: bool = False) -> subprocess.Popen[bytes]:  # fmt: skip
    """:func:`start` for a reader that decodes itself (e.g. with :func:`decode`, line by line)."""
    child: subprocess.Popen[bytes] = _popen(argv, False, env, cwd, stdin, stdout, stderr, window, new_group)
    return child


class Child(Protocol):
    """What :func:`stop` needs of a started child (a Popen, or a stand-in in tests)."""

    def poll(self) -> int | None: ...
    def send_signal(self, sig: int) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def kill(self) -> None: ...


def stop_signal(platform: str = sys.platform) -> int:
    """The polite stop: ``CTRL_BREAK_EVENT`` to a Windows child's own group, SIGTERM elsewhere.

    ``terminate()`` on Windows is TerminateProcess: no handler runs, a server
    never shuts down cleanly.  Ctrl+Break reaches only a child started with
    ``new_group=True``.
    """
    return CTRL_BREAK_EVENT if platform == "win32" else int(signal.SIGTERM)


def stop(child: Child, timeout: float = 10.0, *, platform: str = sys.platform) -> int:
    """Ask ``child`` to exit (:func:`stop_signal`), kill it after ``timeout`` seconds; its exit status."""
    code = child.poll()
    if code is not None:
        return code
    try:
        child.send_signal(stop_signal(platform))
    except OSError:  # it exited meanwhile, or Windows refused the console event: nothing polite left to do
        pass
    try:
        return child.wait(timeout)
    except TimeoutExpired:
        child.kill()  # TerminateProcess on Windows, SIGKILL elsewhere
        return child.wait()


# -- lifeline: a child that ends with its parent --------------------------------------------------------------------
# The launcher starts the runtime with a pipe on its stdin, never writes to it, and sets this variable; the runtime
# reads the pipe and stops when it ends (the launcher exited or was killed, SIGKILL and a closed console included).
# A pipe works the same on Windows and POSIX, where watching a parent PID does not.
LIFELINE_ENV = "YIJIAN_LIFELINE"
LIFELINE_STDIN = "stdin"
