"""Reading console logs for known errors (``yijian diagnose``).

Real logs are messy: ANSI colours, ``\\r`` progress bars, Windows paths,
messages in the user's language, several problems at once.  The log is first
read as structure (:mod:`launcher.diagnosis.logread`: exceptions with their
frames and chains, OS error numbers, the Python the log ran under); then every
signature of ``signatures.toml`` is tried, by its text ``patterns`` and by its
structural ``when`` blocks (exception type + message + error number + frame +
context).  One finding per code is kept with how sure it is, findings that
contradict what the doctor sees on this machine are reworded or dropped
(:mod:`launcher.diagnosis.machine`), and the root cause comes first.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from launcher.diagnosis.logchecks import CHECKS
from launcher.diagnosis.logread import Event, LogView, clean, read

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["SEVERITIES", "Finding", "Signature", "clean", "exit_code", "load_signatures", "scan"]

HERE = Path(__file__).resolve().parent
SEVERITIES = ("error", "warning", "info")
CONFIDENCES = ("high", "medium", "low")


def _groups(pattern: re.Pattern[str], text: str) -> dict[str, str] | None:
    """The named groups ``pattern`` found in ``text`` (stripped), or None when it is not there."""
    m = pattern.search(text)
    return None if m is None else {k: v.strip() for k, v in m.groupdict().items() if v is not None}


@dataclass(frozen=True)
class When:
    """A structural match: every key given must hold (on one exception event, where one is named)."""

    exception: re.Pattern[str] | None = None
    message: re.Pattern[str] | None = None
    numbers: frozenset[int] = frozenset()
    frame: re.Pattern[str] | None = None
    context: re.Pattern[str] | None = None
    unless: re.Pattern[str] | None = None
    check: str = ""
    confidence: str = "high"

    def _event_ok(self, e: Event) -> dict[str, str] | None:
        if self.exception and not (self.exception.fullmatch(e.type) or self.exception.fullmatch(e.short_type)):
            return None
        values = _groups(self.message, e.message) if self.message else {}
        if values is None or (self.numbers and not self.numbers & set(e.numbers)):
            return None
        if self.frame and not any(self.frame.search(f.path) for f in e.frames):
            return None
        return values

    def match(self, view: LogView) -> dict[str, str] | None:
        if self.unless and self.unless.search(view.text):
            return None
        values = _groups(self.context, view.text) if self.context else {}
        if values is None:
            return None
        if self.check:
            got = CHECKS[self.check](view)
            if got is None:
                return None
            values.update(got)
        if self.exception or self.message:
            for e in reversed(view.events):
                hit = self._event_ok(e)
                if hit is not None:
                    return {**values, **hit}
            return None
        if self.numbers and not self.numbers & view.numbers:
            return None
        if self.frame and not any(self.frame.search(f.path) for f in view.frames()):
            return None
        return values


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
    when: tuple[When, ...] = ()
    confidence: str = "high"  # of a text pattern hit
    unless: re.Pattern[str] | None = None  # the text patterns do not count when this occurs
    doubt_check: str = ""  # a named check whose facts make this signature's finding doubtful (medium at most)


@dataclass(frozen=True)
class Finding:
    """One problem, in the ``--json`` contract: code, severity, title, detail, fix, values, confidence."""

    code: str
    severity: str
    title: str
    detail: str
    fix: str
    values: dict[str, str] = field(default_factory=dict)
    action: str = ""
    rank: int = 100
    confidence: str = "high"  # high | medium | low

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "title": self.title, "detail": self.detail,
                "fix": self.fix, "values": self.values, "action": self.action or None,
                "confidence": self.confidence}  # fmt: skip


def _rx(value: str | None) -> re.Pattern[str] | None:
    return re.compile(value, re.IGNORECASE) if value else None


def _check_name(name: str) -> str:
    if name and name not in CHECKS:
        raise ValueError(f"signatures.toml: unknown check {name!r}")
    return name


def _when(w: dict[str, Any]) -> When:
    _check_name(w.get("check", ""))
    return When(_rx(w.get("exception")), _rx(w.get("message")), frozenset(w.get("numbers", ())), _rx(w.get("frame")),
                _rx(w.get("context")), _rx(w.get("unless")), w.get("check", ""), w.get("confidence", "high"))  # fmt: skip


@lru_cache(maxsize=4)
def load_signatures(path: Path = HERE / "signatures.toml") -> tuple[Signature, ...]:
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    return tuple(
        Signature(
            s["code"],
            s["severity"],
            int(s["rank"]),
            tuple(re.compile(p, re.IGNORECASE) for p in s.get("patterns", ())),
            s["title_zh"],
            s["title_en"],
            s["detail_zh"],
            s["detail_en"],
            s["fix_zh"],
            s["fix_en"],
            s.get("action", ""),
            s.get("plain_zh", ""),
            s.get("plain_en", ""),
            tuple(_when(w) for w in s.get("when", ())),
            s.get("confidence", "high"),
            _rx(s.get("unless")),
            _check_name(s.get("doubt_check", "")),
        )  # fmt: skip
        for s in data.get("signature", [])
    )


def _fill(template: str, plain: str, values: dict[str, str]) -> str:
    """The template with the extracted values; its plain form when the log lacked some of them."""
    if plain and not set(re.findall(r"{(\w+)}", template)) <= values.keys():
        return plain
    return template.format_map(defaultdict(lambda: "?", values))


def _hit(sig: Signature, view: LogView) -> tuple[dict[str, str], str] | None:
    """The values and confidence of the best way ``sig`` matches the log, if any."""
    best: tuple[dict[str, str], str] | None = None
    if not (sig.unless and sig.unless.search(view.text)):
        for pattern in sig.patterns:
            found = _groups(pattern, view.text)
            if found is not None:
                best = (found, sig.confidence)
                break
    for w in sig.when:
        if best is not None and CONFIDENCES.index(w.confidence) >= CONFIDENCES.index(best[1]):
            continue
        values = w.match(view)
        if values is not None:
            merged = {**values, **best[0]} if best else values
            best = ({k: v.strip() for k, v in merged.items()}, w.confidence)
    if best is not None and best[1] == "high" and sig.doubt_check and CHECKS[sig.doubt_check](view) is not None:
        best = (best[0], "medium")
    return best


def finding(sig: Signature, lang: str, values: dict[str, str], confidence: str = "high") -> Finding:
    zh = lang == "zh"
    return Finding(sig.code, sig.severity, sig.title_zh if zh else sig.title_en,
                   _fill(sig.detail_zh if zh else sig.detail_en, sig.plain_zh if zh else sig.plain_en, values),
                   sig.fix_zh if zh else sig.fix_en, values, sig.action, sig.rank, confidence)  # fmt: skip


def scan(text: str, lang: str = "en", machine: Any = None, summary: bool = False) -> list[Finding]:
    """Every known problem in ``text``, one per code, root cause first.

    ``machine``: the facts the doctor sees here (:class:`launcher.diagnosis.machine.MachineFacts`);
    findings that contradict them are reworded or dropped.  ``summary``: when nothing known
    matches but the log shows a failure, one ``LOG_SUMMARY`` finding says what it does show.
    """
    view = read(text)
    found: list[Finding] = []
    for sig in load_signatures():
        hit = _hit(sig, view)
        if hit is not None:
            found.append(finding(sig, lang, hit[0], hit[1]))
    if machine is not None:
        from launcher.diagnosis.machine import reconcile

        found = reconcile(found, machine, view, lang)
    if any(f.confidence == "high" and f.severity != "info" for f in found):  # a guess never crowds a sure finding
        found = [f for f in found if f.confidence != "low"]
    found.sort(key=lambda f: (SEVERITIES.index(f.severity), f.rank))
    found = [f for i, f in enumerate(found) if f.code not in {g.code for g in found[:i]}]  # one per code, the gravest
    if not found and summary:
        from launcher.diagnosis.summary import summarize

        note = summarize(view, lang)
        if note is not None:
            found.append(note)
    return found


def exit_code(findings: list[Finding]) -> int:
    """0 nothing wrong, 1 warnings only, 2 errors (the doctor's convention)."""
    if any(f.severity == "error" for f in findings):
        return 2
    return 1 if any(f.severity == "warning" for f in findings) else 0
