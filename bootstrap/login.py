"""The UI login on its way to the runtime: never on a command line.

The launcher hands the login (``user:password``) to the runtime in the
environment variable :data:`LOGIN_ENV` of the child alone.  The environment
and not a file: a process's environment is readable only by its own user
(``/proc/PID/environ`` is mode 0400; on Windows reading another process's
memory needs the same rights as killing it), exactly what a 0600 file would
give, with nothing left on disk when the runtime crashes before removing it
and no file to clean up in a bundle that is copied to another machine.  The
runtime reads it, then removes it from its own environment, so nothing it
starts inherits it.

A1111 habits are honoured on the way: ``--auth``, ``--gradio-auth``,
``--api-auth`` (``user:pass``, several separated by commas) and
``--gradio-auth-path FILE`` given on the launcher's command line after
``--`` or in ``COMMANDLINE_ARGS`` are taken out of the arguments and sent
the same way.  Standard library only: the launcher and the runtime share it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from bootstrap.a1111_flags import take_flags
from bootstrap.errors import LoginInvalid

LOGIN_ENV = "YIJIAN_AUTH"
LOGIN_FLAGS = ("--auth", "--gradio-auth", "--api-auth")  # each takes user:password[,user:password…]
LOGIN_FILE_FLAG = "--gradio-auth-path"  # a file of user:password entries (A1111)


def logins_in(text: str) -> list[str]:
    """The ``user:password`` entries of a flag's value or a login file (commas or new lines between them)."""
    entries = [e.strip() for e in re.split(r"[,\r\n]+", text) if e.strip()]
    for entry in entries:
        user, sep, password = entry.partition(":")
        if not (sep and user.strip() and password):
            # the entry itself is not shown: it may be a password typed without its user
            raise LoginInvalid("an entry is not user:password")
    return entries


def read_login_file(path: str) -> list[str]:
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoginInvalid(f"cannot read the login file {path} ({exc.__class__.__name__})") from exc
    logins = logins_in(text)
    if not logins:
        raise LoginInvalid(f"the login file {path} holds no user:password")
    return logins


def take_login_flags(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``argv`` without its login flags, and the logins those flags gave (login files read)."""
    rest, taken = take_flags(argv, (*LOGIN_FLAGS, LOGIN_FILE_FLAG))
    logins: list[str] = []
    for flag, value in taken:
        logins += read_login_file(value) if flag == LOGIN_FILE_FLAG else logins_in(value)
    return rest, logins
