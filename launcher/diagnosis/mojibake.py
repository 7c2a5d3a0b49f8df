"""Repairing text that was decoded in the wrong code page.

A Windows console shows a Cyrillic user name written in cp1251 through cp866
(``Андрей`` becomes ``└эфЁхщ``), UTF-8 through cp437 or cp866 (``✅`` becomes
``Γ£à``, ``Альт`` becomes ``╨Р╨╗╤М╤В``), and cp1252 through cp850 (``Raphaël``
becomes ``RaphaÙl``).  :func:`repair` tries each such round trip on every run
of non-ASCII characters and keeps a result only when it reads as one script,
without the box-drawing and accented debris the wrong code page leaves.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# (the code page the text was shown in, the one it was written in), most telling first
ROUND_TRIPS = (("cp866", "cp1251"), ("cp437", "utf-8"), ("cp866", "utf-8"), ("cp1252", "utf-8"),
               ("cp850", "cp1252"), ("cp437", "cp1252"), ("gbk", "utf-8"), ("cp1251", "utf-8"))  # fmt: skip
_RUN = re.compile(r"[^\x00-\x7f]+(?:[\x20-\x7f]{0,2}[^\x00-\x7f]+)*")


@dataclass(frozen=True)
class Repair:
    shown: str
    meant: str
    codepages: tuple[str, str]


def _scripts(text: str) -> set[str]:
    out = set()
    for ch in text:
        if ch.isascii():
            continue
        name = unicodedata.name(ch, "")
        out.add(name.split(" ")[0] if name else "?")
    return out


def _debris(text: str) -> int:
    """How much of ``text`` looks like the leftovers of a wrong code page."""
    score = 0
    for ch in text:
        if ch.isascii():
            continue
        cat = unicodedata.category(ch)
        if "\u2500" <= ch <= "\u259f" or cat in ("So", "Sc", "Sk", "Sm", "No", "Co", "Cn") or ch in "°·±":
            score += 2
        elif cat.startswith("L") and unicodedata.name(ch, "").startswith("GREEK"):
            score += 1
    return score + 2 * max(0, len(_scripts(text)) - 1)


def _fix_run(run: str) -> Repair | None:
    if all("\u2500" <= c <= "\u259f" or c.isascii() for c in run):  # a progress bar, not a word
        return None
    before = _debris(run)
    best: Repair | None = None
    for shown, written in ROUND_TRIPS:
        try:
            meant = run.encode(shown).decode(written)
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if (
            meant == run
            or len(set(run)) < 2
            or not any(c.isalpha() or ord(c) > 0x2000 for c in meant if not c.isascii())
        ):
            continue
        after = _score(meant, written)
        if after < before and (best is None or after < _score(best.meant, best.codepages[1])):
            best = Repair(run, meant, (shown, written))
    return best


def _score(meant: str, written: str) -> int:
    # bytes that decode as multi-byte UTF-8 are rarely an accident: that reading wins ties with symbols
    return _debris(meant) - (3 if written == "utf-8" else 0)


def find(text: str) -> list[Repair]:
    """Every run of ``text`` that is mojibake, with what it meant."""
    out = []
    for m in _RUN.finditer(text):
        fixed = _fix_run(m.group())
        if fixed is not None:
            out.append(fixed)
    return out


def repair(text: str) -> str:
    """``text`` with each mojibake run replaced by what it meant."""
    return _RUN.sub(lambda m: r.meant if (r := _fix_run(m.group())) else m.group(), text)
