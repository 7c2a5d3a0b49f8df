"""Writing a file so that readers see the old content or the new one, never half of either.

The bytes go to a temporary file in the same folder (a rename across file
systems is not atomic), are flushed to disk, then ``os.replace`` puts them
under the real name.  A failure leaves the old file as it was and removes the
temporary one.  On Windows a replace fails while another process has the
target open without delete sharing; that is retried briefly before the error
is raised.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
import time
from pathlib import Path

NEW_FILE_MODE = 0o644
REPLACE_TRIES = 5  # Windows only: a reader holding the file open makes os.replace fail for a moment


def replace_tries(platform: str = sys.platform) -> int:
    """How many times to try ``os.replace`` (Windows refuses it while a reader has the target open)."""
    return REPLACE_TRIES if platform == "win32" else 1


def _replace(src: str, dst: Path, tries: int) -> None:
    for attempt in range(tries):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if attempt == tries - 1:
                raise
            time.sleep(0.05 * 2**attempt)


def file_mode(path: Path, mode: int | None) -> int:
    """The permissions the new file gets: ``mode`` if given, else the old file's, else rw-r--r--."""
    if mode is not None:
        return mode
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return NEW_FILE_MODE


def write_atomic(path: Path, data: str | bytes, *, encoding: str = "utf-8", fsync: bool = True,
                 mode: int | None = None, tries: int | None = None) -> None:  # fmt: skip
    """Replace ``path`` with ``data`` (text is written as ``encoding``, line ends as given).

    ``mode``: the new file's permissions (default: those of the file it replaces, or rw-r--r--).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode(encoding) if isinstance(data, str) else data
    wanted = file_mode(path, mode)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # created rw-------
    try:
        if wanted != 0o600:
            os.chmod(tmp, wanted)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        _replace(tmp, path, replace_tries() if tries is None else tries)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
