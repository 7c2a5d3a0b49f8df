"""Reading console logs for known errors (``yijian diagnose``).

Real logs are messy: ANSI colours, ``\\r`` progress bars, Windows paths,
Chinese text, and several problems at once.  The scanner cleans the text,
tries every signature of ``signatures.toml``, keeps one finding per code
(with the values its named groups extracted), and puts the root cause first.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Signature:
    code: str
    severity: str
    rank: int
    patterns: tuple[re.Pattern[str], ...]
    title_zh: str
    title_en: str
    detail_zh: str
    detail_en: str
    fix_zh: str
    fix_en: str
    action: str
    plain_zh: str = ""  # the detail when the log did not carry the values the template names
    plain_en: str = ""


@dataclass(frozen=True)
class Finding:
    """One problem, in the ``--json`` contract: code, severity, title, detail, fix, values."""

    code: str
    severity: str
    title: str
    detail: str
    fix: str
    values: dict[str, str] = field(default_factory=dict)
    action: str = ""
    rank: int = 100

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "title": self.title, "detail": self.detail,
                "fix": self.fix, "values": self.values, "action": self.action or None}  # fmt: skip


@lru_cache(maxsize=4)
def load_signatures(path: Path = HERE / "signatures.toml") -> tuple[Signature, ...]:
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    return tuple(
        Signature(
            s["code"],
            s["severity"],
            int(s["rank"]),
            tuple(re.compile(p, re.IGNORECASE) for p in s["patterns"]),
            s["title_zh"],
            s["title_en"],
            s["detail_zh"],
            s["detail_en"],
            s["fix_zh"],
            s["fix_en"],
            s.get("action", ""),
            s.get("plain_zh", ""),
            s.get("plain_en", ""),
        )  # fmt: skip
        for s in data.get("signature", [])
    )


def clean(text: str) -> str:
    """Drop colours, and keep only the last state of every ``\\r``-rewritten line."""
    text = _ANSI.sub("", text)
    return "\n".join(line.rsplit("\r", 1)[-1] if "\r" in line.rstrip("\r") else line.rstrip("\r")
                     for line in text.replace("\r\n", "\n").split("\n"))  # fmt: skip


def _fill(template: str, plain: str, values: dict[str, str]) -> str:
    """The template with the extracted values; its plain form when the log lacked some of them."""
    if plain and not set(re.findall(r"{(\w+)}", template)) <= values.keys():
        return plain
    return template.format_map(defaultdict(lambda: "?", values))


def scan(text: str, lang: str = "en") -> list[Finding]:
    """Every known problem in ``text``, one per code, root cause first."""
    body = clean(text)
    found: list[Finding] = []
    for sig in load_signatures():
        for pattern in sig.patterns:
            m = pattern.search(body)
            if m is None:
                continue
            values = {k: v.strip() for k, v in m.groupdict().items() if v is not None}
            zh = lang == "zh"
            found.append(Finding(
                sig.code, sig.severity, sig.title_zh if zh else sig.title_en,
                _fill(sig.detail_zh if zh else sig.detail_en, sig.plain_zh if zh else sig.plain_en, values),
                sig.fix_zh if zh else sig.fix_en,
                values, sig.action, sig.rank,
            ))  # fmt: skip
            break
    return sorted(found, key=lambda f: (SEVERITIES.index(f.severity), f.rank))


def exit_code(findings: list[Finding]) -> int:
    """0 nothing wrong, 1 warnings only, 2 errors (the doctor's convention)."""
    if any(f.severity == "error" for f in findings):
        return 2
    return 1 if any(f.severity == "warning" for f in findings) else 0
