"""Index passwords reach pip and uv through a private netrc file, never through their command line.

A private mirror is configured as ``https://user:password@host/simple``.  Put
on pip's or uv's argv as it is, the password shows in every process list
(``ps``, Task Manager's command-line column) for as long as the install runs.
Both installers also read credentials from the netrc file named by ``NETRC``
(pip through requests' ``get_netrc_auth``, uv natively), so
:func:`installer_credentials` takes the user and password out of every URL on
the command line and writes them, per host, to a netrc file in a folder only
this user can read; the file is removed when the installer ends.

The folder is the system's temporary folder, not the bundle: a file left by a
killed launcher must never travel with a copied bundle or a diagnostic zip.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

# A URL with a user part, alone or after a "name=" (uv's --index pytorch=URL).
_URL = re.compile(r"(?P<lead>^|=)(?P<url>https?://[^/@\s]*@[^\s]*)$")
# netrc's tokens are separated by whitespace; quotes are not understood alike by every reader.
_UNSAFE = re.compile(r"[\s\"'#]")


@dataclass(frozen=True)
class Login:
    host: str  # host name as the URL gives it (netrc matches on the name, not the port)
    user: str
    password: str


def split_login(url: str) -> tuple[str, Login | None]:
    """``url`` without its user part, and that user part (``None`` when there is none or it cannot go in netrc)."""
    parts = urlsplit(url)
    if parts.username is None or parts.hostname is None:
        return url, None
    user, password = unquote(parts.username), unquote(parts.password or "")
    if _UNSAFE.search(user + password) or not user:
        return url, None  # kept on the URL: netrc cannot carry it; redaction still masks it in logs
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)), Login(parts.hostname, user, password)


def strip_logins(argv: Sequence[str]) -> tuple[list[str], list[Login]]:
    """The command line with every URL's user part removed, and the logins taken out (one per host)."""
    out: list[str] = []
    logins: dict[str, Login] = {}
    for arg in argv:
        match = _URL.search(arg)
        if match is None:
            out.append(arg)
            continue
        clean, login = split_login(match["url"])
        if login is not None:
            logins.setdefault(login.host, login)
        out.append(arg[: match.start("url")] + clean)
    return out, list(logins.values())


def netrc_text(logins: Sequence[Login]) -> str:
    return "".join(f"machine {x.host}\nlogin {x.user}\npassword {x.password}\n" for x in logins)


@contextlib.contextmanager
def installer_credentials(argv: Sequence[str], env: dict[str, str]) -> Iterator[tuple[list[str], dict[str, str]]]:
    """``(argv, env)`` for running an installer: passwords moved from ``argv`` into a private ``NETRC`` file."""
    clean, logins = strip_logins(argv)
    if not logins:
        yield list(argv), env
        return
    folder = Path(tempfile.mkdtemp(prefix="yijian-netrc-"))  # 0700 on POSIX; the user's own %TEMP% on Windows
    try:
        path = folder / "netrc"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(netrc_text(logins))
        yield clean, {**env, "NETRC": str(path)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
