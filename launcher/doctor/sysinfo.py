"""The diagnostic bundle (诊断包): facts, findings, config and recent logs, with secrets removed.

Users attach it to a bug report, so everything that goes in passes through
:func:`redact` first: tokens (Hugging Face, Civitai, bearer and basic
authorization), passwords and ``user:password`` pairs, credentials inside
URLs (proxies), secret-looking settings, and the user's name in paths.
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

from bootstrap.layout import Bundle
from launcher._version import __version__

LOG_TAIL = 200_000  # bytes of each recent log
LOG_FILES = 8

_SECRET_KEYS = r"(?:token|password|passwd|secret|api[_-]?key|auth|civitai_token|hf_token|access[_-]?key)"
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bhf_[A-Za-z0-9]{20,}"), "hf_***"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (re.compile(r"(?i)(authorization\s*[:=]\s*)\S+"), r"\1***"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]*@"), r"\1***@"),  # credentials in URLs (proxies)
    (re.compile(rf"(?im)^(\s*[\"']?[A-Za-z0-9_.-]*{_SECRET_KEYS}[A-Za-z0-9_.-]*[\"']?\s*[=:]\s*)(.+)$"), r'\1"***"'),
    (re.compile(rf"(?i)([?&][A-Za-z0-9_.-]*{_SECRET_KEYS}[A-Za-z0-9_.-]*=)[^&\s]+"), r"\1***"),
)


def redact(text: str, user_names: Iterable[str] = ()) -> str:
    """``text`` without secrets and without the user's name in paths."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    text = re.sub(r"(?i)(/home/|/Users/|[A-Z]:\\Users\\|[A-Z]:/Users/)[^/\\\s\"']+", r"\1<user>", text)
    for name in user_names:
        if name and len(name) > 1:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", "<user>", text)
    return text


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
