"""The diagnostic bundle (诊断包): facts, findings, config and recent logs, with secrets removed.

Users attach it to a bug report, so everything that goes in passes through
:func:`redact` first: the one redaction layer of bootstrap/redact.py (logins,
tokens, authorization headers, credentials inside URLs, secret settings, the
exact secrets of config.toml and the environment, the home folder), then the
user's name wherever it stands as a word.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import re
import sys
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bootstrap.errors import YijianError
from bootstrap.layout import Bundle
from bootstrap.redact import redact as redact_text
from bootstrap.redact import remember_environ
from launcher._version import __version__

LOG_TAIL = 200_000  # bytes of each recent log
LOG_FILES = 8


def redact(text: str, user_names: Iterable[str] = ()) -> str:
    """``text`` through the one redaction layer (bootstrap/redact.py), then without the user's name as a word."""
    text = redact_text(text)
    for name in user_names:
        if name and len(name) > 1:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", "<user>", text)
    return text


def remember_bundle_secrets(bundle: Bundle) -> None:
    """The secrets of this environment and of config.toml (even an invalid one), to be masked wherever they are."""
    from launcher import config

    remember_environ(os.environ)
    try:
        _, data = config.read(bundle)
    except YijianError:
        return  # unreadable: the file's shapes (key = "value") are still masked
    config.remember_secrets(
        {f"{section}.{k}": v for section, body in data.items() if isinstance(body, dict) for k, v in body.items()}
    )


def _user_names() -> list[str]:
    names = {os.environ.get("USER", ""), os.environ.get("USERNAME", "")}
    try:
        names.add(getpass.getuser())
    except (KeyError, OSError):
        pass
    return sorted(n for n in names if n and n not in ("root",))


def recent_logs(bundle: Bundle, count: int = LOG_FILES) -> list[Path]:
    logs = [p for p in bundle.logs_dir.glob("*.log*") if p.is_file()] if bundle.logs_dir.is_dir() else []
    return sorted(logs, key=lambda p: p.stat().st_mtime, reverse=True)[:count]


def write_bundle(bundle: Bundle, out: Path, report: dict[str, Any]) -> Path:
    """Write the zip; ``report`` is the doctor's JSON (hardware, environment, findings)."""
    users = _user_names()
    remember_bundle_secrets(bundle)
    out.parent.mkdir(parents=True, exist_ok=True)
    facts = {
        "yijian": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "launcher_python": sys.version,
        "platform": platform.platform(),
        "bundle_root": str(bundle.root),
        **report,
    }
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.txt", "Yijian diagnostic bundle: facts.json (hardware, environment, doctor findings), "
                                  "config.toml and recent logs. Secrets and user names were removed.\n")  # fmt: skip
        zf.writestr("facts.json", redact(json.dumps(facts, ensure_ascii=False, indent=1), users))
        if bundle.config_file.is_file():
            zf.writestr("config.toml", redact(bundle.config_file.read_text(encoding="utf-8", errors="replace"), users))
        ranking = bundle.cache_dir / "mirrors.json"
        if ranking.is_file():
            zf.writestr("mirrors.json", redact(ranking.read_text(encoding="utf-8", errors="replace"), users))
        for log in recent_logs(bundle):
            with open(log, "rb") as fh:
                size = log.stat().st_size
                fh.seek(max(0, size - LOG_TAIL))
                tail = fh.read().decode("utf-8", errors="replace")
            zf.writestr(f"logs/{log.name}", redact(tail, users))
    return out
